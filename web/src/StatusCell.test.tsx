import { describe, expect, it } from "vitest";
import { renderToStaticMarkup } from "react-dom/server";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ExportJobSchema, ExportStatus } from "@gen/audit/v1/export_pb.js";
import { StatusCell } from "./StatusCell";
import { retrying } from "./format";

const now = new Date("2026-03-29T19:00:00Z");
const reason = "report generation failed: connection reset by peer";

/** text renders the cell and keeps only what a person reads. */
function text(job: Parameters<typeof create<typeof ExportJobSchema>>[1]): string {
  const html = renderToStaticMarkup(<StatusCell job={create(ExportJobSchema, { jobId: "job_1", ...job })} now={now} />);
  return html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();
}

describe("StatusCell", () => {
  it("shows a job between attempts as retrying, with when, which attempt and why", () => {
    const got = text({
      status: ExportStatus.PENDING,
      attempt: 1,
      failedAttempts: 1,
      maxAttempts: 5,
      nextAttemptAt: timestampFromDate(new Date("2026-03-29T19:30:00Z")),
      retryReason: reason,
      error: `attempt 1 of 5 failed: ${reason}; retrying at 2026-03-29T19:30:00Z`,
    });
    expect(got).toBe(`PENDING retrying — attempt 2 of 5 at 2026-03-29 19:30 UTC ${reason}`);
  });

  it("shows the attempt and its progress while a retry runs", () => {
    const got = text({
      status: ExportStatus.RUNNING,
      attempt: 2,
      failedAttempts: 1,
      maxAttempts: 5,
      retryReason: reason,
      rowsDone: 50n,
      rowsTotal: 100n,
      estimatedCompletion: timestampFromDate(new Date("2026-03-29T19:01:00Z")),
    });
    expect(got).toBe("RUNNING 50% · about 1 min left · attempt 2 of 5");
  });

  it("counts failed attempts, not starts: a worker that died used none up", () => {
    const got = text({
      status: ExportStatus.RUNNING,
      attempt: 4,
      failedAttempts: 1,
      maxAttempts: 3,
      retryReason: reason,
      rowsDone: 50n,
      rowsTotal: 100n,
      estimatedCompletion: timestampFromDate(new Date("2026-03-29T19:01:00Z")),
    });
    expect(got).toBe("RUNNING 50% · about 1 min left · attempt 2 of 3");
  });

  it("says nothing of retries for a first attempt", () => {
    const got = text({ status: ExportStatus.PENDING, attempt: 0, maxAttempts: 5 });
    expect(got).toBe("PENDING queued · estimating…");
  });

  it("shows a failure's reason", () => {
    expect(text({ status: ExportStatus.FAILED, attempt: 1, maxAttempts: 5, error: "the report could not be generated" })).toBe(
      "FAILED the report could not be generated",
    );
  });
});

describe("retrying", () => {
  it("is undefined once the job is finished, whatever fields remain", () => {
    const j = create(ExportJobSchema, {
      status: ExportStatus.COMPLETED,
      attempt: 2,
      maxAttempts: 5,
      nextAttemptAt: timestampFromDate(now),
      retryReason: reason,
    });
    expect(retrying(j)).toBeUndefined();
  });

  it("leaves the maximum out when the server does not send it", () => {
    const j = create(ExportJobSchema, { status: ExportStatus.PENDING, attempt: 1, failedAttempts: 1, nextAttemptAt: timestampFromDate(now), retryReason: reason });
    expect(retrying(j)?.summary).toBe("retrying — attempt 2 at 2026-03-29 19:00 UTC");
  });
});
