// Settings › Audit: the tenant's exports, live. Every job that is not yet
// finished is watched over WatchExport (a server stream over fetch), so its
// progress and ETA move and a toast appears when it becomes ready.
import { Fragment, useCallback, useEffect, useRef, useState } from "react";
import { ExportStatus, type DownloadRecord, type ExportJob, type WhoAmIResponse } from "@gen/audit/v1/export_pb.js";
import { downloadExport, type Clients } from "./api";
import { describeError } from "./errors";
import { ExportDialog, type DialogPreset } from "./ExportDialog";
import { bytes, dateTime, expiresIn, isTerminal, reportLabel, statusName, toDate } from "./format";
import { describePeriod, formatDay } from "./period";
import { StatusCell } from "./StatusCell";
import { useToasts } from "./Toasts";

const exportPermission = "tenant.audit.export";

/** ExportsPage lists exports and opens the Export dialog. */
export function ExportsPage({ clients, me }: { clients: Clients; me: WhoAmIResponse }) {
  const [jobs, setJobs] = useState<ExportJob[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [dialog, setDialog] = useState<DialogPreset | null>(null);
  const [openHistory, setOpenHistory] = useState<string | null>(null);
  const now = useNow(1000);
  const toasts = useToasts();
  const canExport = me.permissions.includes(exportPermission);

  const download = useCallback(
    async (j: ExportJob) => {
      try {
        const how = await downloadExport(clients, j.jobId, j.filename || `${j.jobId}.${j.format}`);
        toasts.push({
          tone: "info",
          title: "Download started",
          body: how === "link" ? `${j.filename} is being saved by your browser.` : `${j.filename} was streamed and saved.`,
        });
      } catch (e) {
        const v = describeError(e);
        toasts.push({ tone: "error", title: v.title, body: v.message });
      }
    },
    [clients, toasts],
  );

  // awaiting holds the jobs seen unfinished (or created here): the first
  // time one is seen finished, by its watch stream or by a list refresh, it
  // is announced. Toasts are decided outside state updaters, which must stay
  // pure.
  const awaiting = useRef(new Set<string>());
  const observe = useCallback(
    (j: ExportJob) => {
      if (!isTerminal(j.status)) {
        awaiting.current.add(j.jobId);
        return;
      }
      if (!awaiting.current.delete(j.jobId)) return;
      if (j.status === ExportStatus.COMPLETED) {
        toasts.push({
          tone: "success",
          title: "Your report is ready",
          body: `${reportLabel(j.reportType)} ${j.format.toUpperCase()}, ${describePeriod(toDate(j.startDate), toDate(j.endDate))}`,
          action: { label: "Download", run: () => void download(j) },
          documentTitle: "Report ready · exportd console",
        });
      } else if (j.status === ExportStatus.FAILED) {
        toasts.push({ tone: "error", title: "An export failed", body: j.error });
      }
    },
    [toasts, download],
  );

  const load = useCallback(async () => {
    try {
      const res = await clients.exports.listExports({ pageSize: 50 });
      res.exports.forEach(observe);
      setJobs(res.exports);
      setLoadError(null);
    } catch (e) {
      setLoadError(describeError(e).message);
    }
  }, [clients, observe]);
  useEffect(() => void load(), [load]);

  const update = useCallback(
    (next: ExportJob) => {
      observe(next);
      setJobs((js) => js && js.map((j) => (j.jobId === next.jobId ? next : j)));
    },
    [observe],
  );

  // Watch every unfinished job; one stream each, ended when the job is done
  // or the page goes away.
  const watching = useRef(new Map<string, AbortController>());
  useEffect(() => {
    const live = new Set((jobs ?? []).filter((j) => !isTerminal(j.status)).map((j) => j.jobId));
    for (const id of live) {
      if (watching.current.has(id)) continue;
      const ac = new AbortController();
      watching.current.set(id, ac);
      void (async () => {
        try {
          for await (const m of clients.exports.watchExport({ jobId: id }, { signal: ac.signal })) {
            if (m.export) update(m.export);
          }
        } catch {
          // A broken stream is not fatal: the next list refresh tells the truth.
          if (!ac.signal.aborted) setTimeout(() => void load(), 2000);
        } finally {
          watching.current.delete(id);
        }
      })();
    }
  }, [jobs, clients, update, load]);
  useEffect(() => {
    const w = watching.current;
    return () => w.forEach((ac) => ac.abort());
  }, []);

  const created = (jobId: string | undefined) => {
    setDialog(null);
    if (jobId) {
      awaiting.current.add(jobId);
      toasts.push({ tone: "info", title: "Export queued", body: "You will be notified here when the report is ready." });
    }
    void load();
  };

  return (
    <section aria-labelledby="exports-title">
      <div className="page-head">
        <div>
          <h1 id="exports-title">Compliance exports</h1>
          <p className="muted">
            SOC 2, GDPR and HIPAA reports from your audit logs and attestation records. Reports run in the background; you are notified
            when one is ready.
          </p>
        </div>
        <button
          type="button"
          className="btn btn-primary"
          onClick={() => setDialog({})}
          title={canExport ? undefined : "Your role cannot create exports; the dialog explains why."}
        >
          Export
        </button>
      </div>

      {loadError && (
        <div className="alert alert-error" role="alert">
          {loadError}
        </div>
      )}

      <div className="card table-card">
        <table className="table" aria-label="Exports">
          <thead>
            <tr>
              <th scope="col">Report</th>
              <th scope="col">Period (UTC)</th>
              <th scope="col">Format</th>
              <th scope="col">Status</th>
              <th scope="col">Created by</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {jobs === null && !loadError && (
              <tr>
                <td colSpan={7} className="muted empty">
                  Loading exports…
                </td>
              </tr>
            )}
            {jobs?.length === 0 && (
              <tr>
                <td colSpan={7} className="empty">
                  <strong>No exports yet.</strong> <span className="muted">Choose Export to generate your first report.</span>
                </td>
              </tr>
            )}
            {jobs?.map((j) => (
              <Fragment key={j.jobId}>
                <tr data-testid="export-row" data-job-id={j.jobId} data-status={statusName(j.status)}>
                  <td>
                    <div className="cell-main">{reportLabel(j.reportType)}</div>
                    <div className="cell-sub mono">{j.jobId}</div>
                  </td>
                  <td>{describePeriod(toDate(j.startDate), toDate(j.endDate))}</td>
                  <td>
                    <span className="pill">{j.format.toUpperCase()}</span>
                  </td>
                  <td>
                    <StatusCell job={j} now={now} />
                  </td>
                  <td>
                    <div>{j.requestedBy}</div>
                    <div className="cell-sub">{dateTime(toDate(j.createdAt))}</div>
                  </td>
                  <td className="nowrap">{expiresIn(j, now)}</td>
                  <td className="actions">
                    {j.status === ExportStatus.COMPLETED && (
                      <button type="button" className="btn btn-secondary btn-small" onClick={() => void download(j)} aria-label={`Download ${j.filename}`}>
                        Download
                      </button>
                    )}
                    {(j.status === ExportStatus.EXPIRED || j.status === ExportStatus.FAILED) && (
                      <button
                        type="button"
                        className="btn btn-secondary btn-small"
                        onClick={() =>
                          setDialog({
                            reportType: j.reportType,
                            format: j.format,
                            start: j.startDate ? formatDay(toDate(j.startDate)!) : undefined,
                            end: j.endDate ? formatDay(toDate(j.endDate)!) : undefined,
                          })
                        }
                      >
                        Create again
                      </button>
                    )}
                    {j.status === ExportStatus.COMPLETED && (
                      <button
                        type="button"
                        className="btn btn-ghost btn-small"
                        aria-expanded={openHistory === j.jobId}
                        aria-controls={`history-${j.jobId}`}
                        onClick={() => setOpenHistory(openHistory === j.jobId ? null : j.jobId)}
                      >
                        History
                      </button>
                    )}
                  </td>
                </tr>
                {openHistory === j.jobId && (
                  <tr className="history-row" id={`history-${j.jobId}`}>
                    <td colSpan={7}>
                      <DownloadHistory clients={clients} job={j} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>

      {dialog && <ExportDialog clients={clients} preset={dialog} onClose={created} />}
    </section>
  );
}

function DownloadHistory({ clients, job }: { clients: Clients; job: ExportJob }) {
  const [rows, setRows] = useState<DownloadRecord[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    clients.downloads
      .listDownloads({ jobId: job.jobId })
      .then((r) => setRows(r.downloads))
      .catch((e) => setError(describeError(e).message));
  }, [clients, job.jobId]);
  if (error) return <p className="muted">Download history: {error}</p>;
  if (!rows) return <p className="muted">Loading download history…</p>;
  if (rows.length === 0) return <p className="muted">Nobody has downloaded this report yet.</p>;
  return (
    <table className="table table-inner" aria-label={`Downloads of ${job.jobId}`}>
      <thead>
        <tr>
          <th scope="col">Who</th>
          <th scope="col">When (UTC)</th>
          <th scope="col">From</th>
          <th scope="col">Via</th>
          <th scope="col">Bytes</th>
          <th scope="col">Result</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((d, i) => (
          <tr key={i}>
            <td>{d.principal}</td>
            <td>{dateTime(toDate(d.downloadedAt))}</td>
            <td>
              <div className="mono">{d.clientIp}</div>
              <div className="cell-sub ua">{d.userAgent}</div>
            </td>
            <td>{d.protocol}</td>
            <td>{bytes(d.bytesSent)}</td>
            <td>{d.completed ? "completed" : "aborted"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** useNow re-renders every interval so ETAs and expiry count down. */
function useNow(ms: number): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
