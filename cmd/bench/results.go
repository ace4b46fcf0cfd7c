package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Comparison operators of a target.
const (
	le = "≤"
	ge = "≥"
)

// figure is one measured value, with its target when it has one.
type figure struct {
	Key    string  `json:"key"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// target sets the figure's target: value op limit.
func (f figure) target(op string, limit float64) figure {
	f.Target = op + " " + formatValue(limit, f.Unit)
	met := f.Value <= limit
	if op == ge {
		met = f.Value >= limit
	}
	f.Met = &met
	return f
}

type machineInfo struct {
	Cores      int    `json:"cores"`
	CPU        string `json:"cpu"`
	OS         string `json:"os"`
	GoVersion  string `json:"go"`
	PostgreSQL string `json:"postgresql"`
}

// results is what a run writes.
type results struct {
	Date       string      `json:"date"`
	Machine    machineInfo `json:"machine"`
	Events     int         `json:"events"`
	Runs       int         `json:"runs"`
	Quick      bool        `json:"quick"`
	Duration   string      `json:"duration"`
	Figures    []figure    `json:"figures"`
	Statements []string    `json:"create_export_statements,omitempty"`
}

func newResults(o options) *results {
	return &results{Date: time.Now().UTC().Format(time.RFC3339), Events: o.events, Runs: o.runs, Quick: o.quick}
}

func (r *results) add(f figure) { r.Figures = append(r.Figures, f) }

func (r *results) value(key string) float64 {
	for _, f := range r.Figures {
		if f.Key == key {
			return f.Value
		}
	}
	return 0
}

func (r *results) missed() int {
	n := 0
	for _, f := range r.Figures {
		if f.Met != nil && !*f.Met {
			n++
		}
	}
	return n
}

// print writes the table.
func (r *results) print(w io.Writer) {
	mode := ""
	if r.Quick {
		mode = ", quick mode: sizes too small for the targets to mean anything"
	}
	fmt.Fprintf(w, "\nexportd bench, %s, %d cores (%s), PostgreSQL %s, N=%d events, median of %d%s, took %s\n\n",
		r.Date[:10], r.Machine.Cores, r.Machine.CPU, r.Machine.PostgreSQL, r.Events, r.Runs, mode, r.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\t")
	for _, f := range r.Figures {
		verdict := ""
		if f.Met != nil {
			verdict = "met"
			if !*f.Met {
				verdict = "MISSED"
			}
			verdict = f.Target + "  " + verdict
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", f.Name, formatValue(f.Value, f.Unit), verdict)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// markdown writes the table for the README.
func (r *results) markdown(w io.Writer) {
	fmt.Fprintln(w, "| figure | value | target | |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	for _, f := range r.Figures {
		verdict := ""
		if f.Met != nil {
			verdict = "met"
			if !*f.Met {
				verdict = "**missed**"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", f.Name, formatValue(f.Value, f.Unit), f.Target, verdict)
	}
}

func (r *results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	var md strings.Builder
	r.markdown(&md)
	return os.WriteFile(strings.TrimSuffix(path, filepath.Ext(path))+".md", []byte(md.String()), 0o644)
}

func formatValue(v float64, unit string) string {
	switch {
	case unit == "×":
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	case unit == "%":
		return strconv.FormatFloat(v, 'f', 1, 64) + " %"
	case v >= 1000:
		return group(int64(v+0.5)) + " " + unit
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + unit
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " " + unit
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
