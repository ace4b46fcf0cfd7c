// The Export dialog: report type, period (quick picks or custom UTC days,
// end day included), format, Generate report. Problems are shown where they
// are: field violations next to their fields, denials as one message that
// says what to do.
import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Clients } from "./api";
import { describeError, type ErrorView } from "./errors";
import { reportTypes } from "./format";
import { checkRange, quickRange, toRequest, type DayRange, type QuickPick } from "./period";
import { linkProps } from "./router";

/** DialogPreset fills the dialog, e.g. for "create again". */
export interface DialogPreset {
  reportType?: string;
  format?: string;
  start?: string;
  end?: string;
}

/** ExportDialog asks for one report; onClose gets the new job id, if any. */
export function ExportDialog({ clients, preset, onClose }: { clients: Clients; preset: DialogPreset; onClose: (jobId?: string) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const now = useMemo(() => new Date(), []);
  const [reportType, setReportType] = useState(preset.reportType ?? "soc2");
  const [format, setFormat] = useState(preset.format ?? "json");
  const [pick, setPick] = useState<QuickPick>(preset.start ? "custom" : "last_quarter");
  const [custom, setCustom] = useState<DayRange>(() => ({
    start: preset.start ?? quickRange("last_quarter", now).start,
    end: preset.end ?? quickRange("last_quarter", now).end,
  }));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorView | null>(null);
  const [localFields, setLocalFields] = useState<Record<string, string>>({});

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const range: DayRange = pick === "custom" ? custom : quickRange(pick, now);
  const fields = { ...(error?.fields ?? {}), ...localFields };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const problems = checkRange(range, new Date());
    // Malformed days cannot be sent at all; other problems are left for the
    // server to name, so that the dialog shows its authoritative violations.
    const blocking = problems.filter((p) => p.message.startsWith("Enter"));
    setLocalFields(Object.fromEntries(blocking.map((p) => [p.field, p.message])));
    if (blocking.length > 0) return;
    const period = toRequest(range);
    setBusy(true);
    try {
      const res = await clients.exports.createExport({
        reportType,
        format,
        startDate: timestampFromDate(new Date(period.startDate)),
        endDate: timestampFromDate(new Date(period.endDate)),
      });
      onClose(res.jobId);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const fieldError = (name: string) =>
    fields[name] ? (
      <p id={`${id}-${name}-error`} className="field-error" data-testid={`error-${name}`}>
        {fields[name]}
      </p>
    ) : null;
  const describedBy = (name: string, hint?: string) =>
    [fields[name] ? `${id}-${name}-error` : "", hint ?? ""].filter(Boolean).join(" ") || undefined;
  const showGeneral = error && (Object.keys(error.fields).length === 0 || error.fields.request);

  return (
    <dialog ref={ref} className="dialog" aria-labelledby={`${id}-title`} onClose={() => onClose()}>
      <form onSubmit={submit} noValidate>
        <header className="dialog-head">
          <h2 id={`${id}-title`}>Export audit report</h2>
          <button type="button" className="btn btn-ghost btn-small" aria-label="Close" onClick={() => onClose()}>
            ✕
          </button>
        </header>

        {showGeneral && (
          <div className="alert alert-error" role="alert" data-testid="dialog-error">
            <strong>{error.title}</strong>
            <p>{error.message}</p>
            {error.action && (
              <a className="alert-link" {...linkProps(error.action.href)} onClick={(e) => {
                linkProps(error.action!.href).onClick(e);
                onClose();
              }}>
                {error.action.label} →
              </a>
            )}
          </div>
        )}
        {error && !showGeneral && (
          <div className="alert alert-warn" role="alert" data-testid="dialog-error">
            {error.message}
          </div>
        )}

        <fieldset className="field">
          <legend>Report type</legend>
          <div className="segmented">
            {reportTypes.map((r) => (
              <label key={r.value} className={reportType === r.value ? "checked" : ""}>
                <input type="radio" name="report_type" value={r.value} checked={reportType === r.value} onChange={() => setReportType(r.value)} />
                {r.label}
              </label>
            ))}
          </div>
          {fieldError("report_type")}
        </fieldset>

        <fieldset className="field">
          <legend>Date range</legend>
          <div className="segmented">
            {(
              [
                ["last_quarter", "Last quarter"],
                ["this_year", "This year"],
                ["custom", "Custom"],
              ] as const
            ).map(([v, label]) => (
              <label key={v} className={pick === v ? "checked" : ""}>
                <input
                  type="radio"
                  name="range"
                  value={v}
                  checked={pick === v}
                  onChange={() => {
                    if (v === "custom") setCustom(range);
                    setPick(v);
                  }}
                />
                {label}
              </label>
            ))}
          </div>
          <div className="dates">
            <div>
              <label htmlFor={`${id}-start`}>From</label>
              <input
                id={`${id}-start`}
                name="start_date"
                type="date"
                value={range.start}
                disabled={pick !== "custom"}
                aria-invalid={fields.start_date ? true : undefined}
                aria-describedby={describedBy("start_date", `${id}-tz`)}
                onChange={(e) => setCustom({ ...custom, start: e.target.value })}
              />
              {fieldError("start_date")}
            </div>
            <div>
              <label htmlFor={`${id}-end`}>To (included)</label>
              <input
                id={`${id}-end`}
                name="end_date"
                type="date"
                value={range.end}
                disabled={pick !== "custom"}
                aria-invalid={fields.end_date ? true : undefined}
                aria-describedby={describedBy("end_date", `${id}-tz`)}
                onChange={(e) => setCustom({ ...custom, end: e.target.value })}
              />
              {fieldError("end_date")}
            </div>
          </div>
          <p id={`${id}-tz`} className="hint">
            Times are UTC. The report covers {range.start || "…"} 00:00:00 to {range.end || "…"} 23:59:59 UTC, the end day included.
          </p>
        </fieldset>

        <fieldset className="field">
          <legend>Format</legend>
          <div className="segmented">
            {(
              [
                ["json", "JSON"],
                ["csv", "CSV"],
              ] as const
            ).map(([v, label]) => (
              <label key={v} className={format === v ? "checked" : ""}>
                <input type="radio" name="format" value={v} checked={format === v} onChange={() => setFormat(v)} />
                {label}
              </label>
            ))}
          </div>
          <p className="hint">{format === "csv" ? "One spreadsheet-ready file with a record_type column." : "Structured JSON with full metadata."}</p>
          {fieldError("format")}
        </fieldset>

        <footer className="dialog-foot">
          <button type="button" className="btn btn-ghost" onClick={() => onClose()}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Generating…" : "Generate report"}
          </button>
        </footer>
      </form>
    </dialog>
  );
}
