// Small formatting helpers for the exports list: statuses, progress, ETA,
// expiry. They take "now" as an argument so that tests can pin it.
import { ExportStatus, type ExportJob } from "@gen/audit/v1/export_pb.js";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

/** reportTypes are the frameworks, in the order the dialog offers them. */
export const reportTypes = [
  { value: "soc2", label: "SOC 2" },
  { value: "gdpr", label: "GDPR" },
  { value: "hipaa", label: "HIPAA" },
] as const;

/** reportLabel names a report type for people. */
export function reportLabel(t: string): string {
  return reportTypes.find((r) => r.value === t)?.label ?? t.toUpperCase();
}

/** statusName is the wire name of a status (PENDING, RUNNING, …). */
export function statusName(s: ExportStatus): string {
  return ExportStatus[s] ?? "UNKNOWN";
}

/** isTerminal is true for statuses that no longer change by themselves. */
export function isTerminal(s: ExportStatus): boolean {
  return s === ExportStatus.COMPLETED || s === ExportStatus.FAILED || s === ExportStatus.EXPIRED;
}

/** toDate converts an optional protobuf Timestamp. */
export function toDate(t: Timestamp | undefined): Date | undefined {
  return t ? timestampDate(t) : undefined;
}

/** percent is the job's progress from 0 to 100, or undefined when unknown. */
export function percent(j: Pick<ExportJob, "rowsDone" | "rowsTotal" | "status">): number | undefined {
  if (j.status === ExportStatus.COMPLETED) return 100;
  const total = Number(j.rowsTotal);
  if (!(total > 0)) return undefined;
  return Math.min(99, Math.floor((Number(j.rowsDone) * 100) / total));
}

/** duration writes a span like "45 s", "3 min", "2 h", "6 days". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}

/** eta says how long until an estimated completion. */
export function eta(est: Date | undefined, now: Date): string {
  if (!est) return "estimating…";
  const ms = est.getTime() - now.getTime();
  if (ms <= 1000) return "finishing…";
  return `about ${duration(ms)} left`;
}

/** expiresIn says how long a completed report stays downloadable. */
export function expiresIn(j: Pick<ExportJob, "status" | "expiresAt">, now: Date): string {
  const at = toDate(j.expiresAt);
  if (j.status === ExportStatus.EXPIRED) return "expired";
  if (!at || j.status !== ExportStatus.COMPLETED) return "—";
  const ms = at.getTime() - now.getTime();
  return ms <= 0 ? "expired" : `in ${duration(ms)}`;
}

/** dateTime writes an instant in UTC, e.g. "2026-03-29 19:30 UTC". */
export function dateTime(d: Date | undefined): string {
  if (!d) return "—";
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** bytes writes a size like "1.2 MB". */
export function bytes(n: number | bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

/** Retry describes a job that is retrying after a failed attempt. */
export type Retry = {
  /** waiting is true between attempts (PENDING until the next one). */
  waiting: boolean;
  /** summary reads "retrying — attempt 2 of 5 at 2026-03-29 19:30 UTC" between attempts, "attempt 2 of 5" while it runs. */
  summary: string;
  /** reason is why the last attempt failed. */
  reason: string;
};

/**
 * retrying tells whether a job is retrying: waiting for its next attempt
 * (next_attempt_at set), or running an attempt after a failed one. Attempts
 * are counted by failedAttempts (a worker that died used none up; attempt
 * counts starts), so the one waited for or running is failedAttempts + 1.
 */
export function retrying(
  j: Pick<ExportJob, "status" | "failedAttempts" | "maxAttempts" | "nextAttemptAt" | "retryReason">,
): Retry | undefined {
  const next = toDate(j.nextAttemptAt);
  const of = j.maxAttempts > 0 ? ` of ${j.maxAttempts}` : "";
  if (j.status === ExportStatus.PENDING && next) {
    return { waiting: true, summary: `retrying — attempt ${j.failedAttempts + 1}${of} at ${dateTime(next)}`, reason: j.retryReason };
  }
  if (j.status === ExportStatus.RUNNING && j.retryReason && j.failedAttempts > 0) {
    return { waiting: false, summary: `attempt ${j.failedAttempts + 1}${of}`, reason: j.retryReason };
  }
  return undefined;
}
