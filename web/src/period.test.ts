import { describe, expect, it } from "vitest";
import { checkRange, parseDay, quickRange, toRequest } from "./period";

const at = (s: string) => new Date(s);

describe("quickRange", () => {
  it.each([
    ["2026-03-29T12:00:00Z", { start: "2025-10-01", end: "2025-12-31" }], // Q1: last quarter is last year's Q4
    ["2026-04-01T00:00:00Z", { start: "2026-01-01", end: "2026-03-31" }],
    ["2026-08-15T23:59:59Z", { start: "2026-04-01", end: "2026-06-30" }],
    ["2026-12-31T23:00:00Z", { start: "2026-07-01", end: "2026-09-30" }],
  ])("last quarter on %s", (now, want) => {
    expect(quickRange("last_quarter", at(now))).toEqual(want);
  });

  it("this year runs from 1 January to today, in UTC", () => {
    // 23:30 on 31 March in New York is already 1 April in UTC.
    expect(quickRange("this_year", at("2026-04-01T03:30:00Z"))).toEqual({ start: "2026-01-01", end: "2026-04-01" });
  });
});

describe("toRequest", () => {
  it("sends the start day from midnight and the end day up to 23:59:59Z, included", () => {
    expect(toRequest({ start: "2026-01-01", end: "2026-03-31" })).toEqual({
      startDate: "2026-01-01T00:00:00Z",
      endDate: "2026-03-31T23:59:59Z",
    });
  });

  it("a one-day period covers that whole day", () => {
    const r = toRequest({ start: "2026-02-28", end: "2026-02-28" });
    expect(Date.parse(r.endDate) - Date.parse(r.startDate)).toBe(86_399_000);
  });
});

describe("checkRange", () => {
  const now = at("2026-04-10T10:00:00Z");
  it("accepts a good range, including an end in the future", () => {
    expect(checkRange({ start: "2026-01-01", end: "2026-12-31" }, now)).toEqual([]);
  });
  it("names the end date when it is before the start", () => {
    expect(checkRange({ start: "2026-03-01", end: "2026-02-01" }, now)).toEqual([
      { field: "end_date", message: "The end date must be on or after the start date." },
    ]);
  });
  it("names the start date when it is in the future", () => {
    expect(checkRange({ start: "2026-05-01", end: "2026-05-31" }, now).map((p) => p.field)).toEqual(["start_date"]);
  });
  it("rejects days that do not exist or are malformed", () => {
    expect(checkRange({ start: "2026-02-30", end: "31/03/2026" }, now).map((p) => p.field)).toEqual(["start_date", "end_date"]);
  });
});

describe("parseDay", () => {
  it("reads UTC midnight", () => {
    expect(parseDay("2024-02-29")?.toISOString()).toBe("2024-02-29T00:00:00.000Z");
    expect(parseDay("2025-02-29")).toBeUndefined();
    expect(parseDay("")).toBeUndefined();
  });
});
