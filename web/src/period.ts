// Period logic of the export dialog. Every date here is a UTC calendar day
// written YYYY-MM-DD: the API takes UTC instants, and the console says so
// rather than guessing the reader's time zone. The end day is included: it
// is sent as YYYY-MM-DDT23:59:59Z, which the server reads as "up to and
// including 23:59:59.999999" (whole-second inclusive end, SPEC §3).

/** QuickPick names the preset ranges offered by the dialog. */
export type QuickPick = "last_quarter" | "this_year" | "custom";

/** DayRange is an inclusive range of UTC calendar days. */
export interface DayRange {
  /** start is the first day, YYYY-MM-DD. */
  start: string;
  /** end is the last day (included), YYYY-MM-DD. */
  end: string;
}

/** PeriodRequest is what CreateExport receives: RFC 3339 UTC strings. */
export interface PeriodRequest {
  startDate: string;
  endDate: string;
}

/** PeriodProblem is a client-side check that failed, keyed by field. */
export interface PeriodProblem {
  field: "start_date" | "end_date";
  message: string;
}

const dayPattern = /^(\d{4})-(\d{2})-(\d{2})$/;

/** formatDay writes a Date's UTC calendar day as YYYY-MM-DD. */
export function formatDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** parseDay reads YYYY-MM-DD as midnight UTC, or undefined if it is not a real day. */
export function parseDay(s: string): Date | undefined {
  const m = dayPattern.exec(s);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 2026-02-30 over to March: reject such days.
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) {
    return undefined;
  }
  return t;
}

/**
 * quickRange returns the days of a preset relative to now (UTC):
 * last_quarter is the previous whole calendar quarter; this_year runs from
 * 1 January to today.
 */
export function quickRange(pick: Exclude<QuickPick, "custom">, now: Date): DayRange {
  const y = now.getUTCFullYear();
  if (pick === "this_year") {
    return { start: `${y}-01-01`, end: formatDay(now) };
  }
  const q = Math.floor(now.getUTCMonth() / 3); // 0..3, this quarter
  const startMonth = q === 0 ? 9 : (q - 1) * 3; // first month of last quarter
  const year = q === 0 ? y - 1 : y;
  const start = new Date(Date.UTC(year, startMonth, 1));
  const end = new Date(Date.UTC(year, startMonth + 3, 0)); // day 0 = last of previous month
  return { start: formatDay(start), end: formatDay(end) };
}

/**
 * checkRange finds what the server would refuse anyway, to say it before
 * the round trip: malformed days, an end before the start, a start in the
 * future. The server stays the authority (its violations are shown too).
 */
export function checkRange(r: DayRange, now: Date): PeriodProblem[] {
  const problems: PeriodProblem[] = [];
  const start = parseDay(r.start);
  const end = parseDay(r.end);
  if (!start) problems.push({ field: "start_date", message: "Enter a start date as YYYY-MM-DD." });
  if (!end) problems.push({ field: "end_date", message: "Enter an end date as YYYY-MM-DD." });
  if (start && start.getTime() > now.getTime()) {
    problems.push({ field: "start_date", message: "The start date cannot be in the future." });
  }
  if (start && end && end.getTime() < start.getTime()) {
    problems.push({ field: "end_date", message: "The end date must be on or after the start date." });
  }
  return problems;
}

/**
 * toRequest turns inclusive UTC days into the request's instants: the start
 * day from 00:00:00Z, the end day up to 23:59:59Z (included). It does not
 * check the range: the server's validation is shown when it refuses.
 */
export function toRequest(r: DayRange): PeriodRequest {
  return { startDate: `${r.start}T00:00:00Z`, endDate: `${r.end}T23:59:59Z` };
}

/** describePeriod writes an export's period for the list, e.g. "1 Jan 2026 – 31 Mar 2026". */
export function describePeriod(start: Date | undefined, end: Date | undefined): string {
  if (!start || !end) return "—";
  return `${shortDay(start)} – ${shortDay(end)}`;
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** shortDay writes a UTC day as "1 Jan 2026". */
export function shortDay(d: Date): string {
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}
