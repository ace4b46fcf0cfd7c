// The Status column of the exports list: the status badge and what goes
// with it (progress and ETA, a retry between attempts, size, the failure).
import { ExportStatus, type ExportJob } from "@gen/audit/v1/export_pb.js";
import { bytes, eta, percent, retrying, statusName, toDate } from "./format";

/** StatusCell shows one job's status and what a person needs to know about it. */
export function StatusCell({ job, now }: { job: ExportJob; now: Date }) {
  const name = statusName(job.status);
  const pct = percent(job);
  const badge = (
    <span className={`badge badge-${name.toLowerCase()}`} data-testid="status">
      {name}
    </span>
  );
  const retry = retrying(job);
  switch (job.status) {
    case ExportStatus.PENDING:
    case ExportStatus.RUNNING:
      if (retry?.waiting) {
        // Between attempts: say when the next one starts and why the last
        // one failed, rather than an ETA that no longer means anything.
        return (
          <div className="status-live">
            {badge}
            <span className="cell-sub" data-testid="retry">
              {retry.summary}
            </span>
            {retry.reason && (
              <span className="cell-error" data-testid="retry-reason">
                {retry.reason}
              </span>
            )}
          </div>
        );
      }
      return (
        <div className="status-live">
          {badge}
          <progress max={100} value={pct} aria-label={`Progress of ${job.jobId}`} />
          <span className="cell-sub">
            {pct !== undefined ? `${pct}% · ` : job.status === ExportStatus.PENDING ? "queued · " : ""}
            {eta(toDate(job.estimatedCompletion), now)}
            {retry && ` · ${retry.summary}`}
          </span>
        </div>
      );
    case ExportStatus.COMPLETED:
      return (
        <div>
          {badge}
          <div className="cell-sub">
            {bytes(job.sizeBytes)} · {Number(job.rowsDone).toLocaleString("en-US")} rows
          </div>
        </div>
      );
    case ExportStatus.FAILED:
      return (
        <div>
          {badge}
          <div className="cell-error" data-testid="job-error">
            {job.error || "Generation failed."}
          </div>
        </div>
      );
    case ExportStatus.EXPIRED:
      return (
        <div>
          {badge}
          <div className="cell-sub">The download window has passed. Create the export again.</div>
        </div>
      );
    default:
      return badge;
  }
}
