package reports

import "time"

// AppliedPeriod turns a requested period into the half-open range read from
// the log. The end is inclusive at whole-second precision, as the vendor API
// promises: an end of …T23:59:59Z covers every event up to …T23:59:59.999999,
// so a whole-second end reads up to end+1s; an end with a fraction is inclusive
// to the microsecond.
func AppliedPeriod(start, end time.Time) (from, to time.Time) {
	start, end = start.UTC().Truncate(time.Microsecond), end.UTC()
	if end.Nanosecond() == 0 {
		return start, end.Add(time.Second)
	}
	return start, end.Truncate(time.Microsecond).Add(time.Microsecond)
}
