package reports

import (
	"fmt"
	"strconv"
	"time"
)

// catalog is parsed once; Generate only reads it.
var catalog = mustCatalog()

// events streams the events f selects into one section: a JSON array named
// section, or rows of recordType. Every event also goes to ev (if not nil).
// want is the count announced before the section; a different number read
// means the log changed under the watermark, and a report whose header
// disagrees with its body must not be published.
func (g *gen) events(section, recordType string, f EventFilter, ev *evidence, want int64) error {
	return g.eventSection(section, recordType, func(fn func(*Event) error) error { return g.src.Events(g.ctx, f, fn) }, ev, nil, want)
}

// eventSection writes the events read calls back with, as events does;
// every event also goes to tap (if not nil) with the row it was encoded
// as, for a later section.
func (g *gen) eventSection(section, recordType string, read func(func(*Event) error) error, ev *evidence, tap func(e *Event, row []byte) error, want int64) error {
	var n int64
	if g.csv == nil {
		g.beginArray(section)
	}
	err := read(func(e *Event) error {
		n++
		g.included(e)
		if ev != nil {
			if err := ev.add(e); err != nil {
				return err
			}
		}
		var row []byte
		if g.csv != nil {
			if err := g.csvEvent(recordType, e); err != nil {
				return fmt.Errorf("write %s: %w", section, err)
			}
			row = g.csv.line
		} else {
			var err error
			if g.buf, err = appendEvent(g.buf[:0], e); err != nil {
				return fmt.Errorf("encode event %d metadata: %w", e.Sequence, err)
			}
			if err := g.item(g.buf); err != nil {
				return err
			}
			row = g.buf
		}
		if tap != nil {
			if err := tap(e, row); err != nil {
				return err
			}
		}
		return g.row()
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", section, err)
	}
	if g.csv == nil {
		g.endArray()
	}
	if want >= 0 && n != want {
		return fmt.Errorf("read %s: counted %d events but read %d; the log changed during generation", section, want, n)
	}
	g.sum.Counts[section] = n
	return nil
}

// rowSection writes rows another section encoded (eventSection's tap
// kept them): JSON elements as they are, CSV rows under recordType, as
// the encoded row of oldType with the record type swapped.
func (g *gen) rowSection(section, recordType, oldType string, read func(func([]byte) error) error, want int64) error {
	var n int64
	if g.csv == nil {
		g.beginArray(section)
	}
	err := read(func(row []byte) error {
		n++
		if g.csv != nil {
			b := appendCSVField(g.csv.line[:0], recordType)
			b = append(b, row[len(oldType):len(row)-1]...) // without the old type and the line end flush adds
			if err := g.csv.flush(b); err != nil {
				return fmt.Errorf("write %s: %w", section, err)
			}
		} else if err := g.item(row); err != nil {
			return err
		}
		return g.row()
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", section, err)
	}
	if g.csv == nil {
		g.endArray()
	}
	if want >= 0 && n != want {
		return fmt.Errorf("read %s: counted %d events but read %d; the log changed during generation", section, want, n)
	}
	g.sum.Counts[section] = n
	return nil
}

// controls writes the id → statement map, in catalog order.
func (g *gen) controls(controls []Control) error {
	g.sum.Counts["controls"] = int64(len(controls))
	if g.csv != nil {
		for _, c := range controls {
			g.begin("control")
			g.rec[colFramework] = c.Framework
			g.text(colControlID, c.ID)
			g.text(colStatement, c.Statement)
			g.controlColumns(c)
			if err := g.flushRow(); err != nil {
				return err
			}
		}
		return nil
	}
	g.key("controls")
	b := append(g.buf[:0], '{')
	for i, c := range controls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendString(b, c.ID)
		b = append(b, ": "...)
		b = appendString(b, c.Statement)
	}
	b = append(b, "\n  }"...)
	g.buf = b
	if _, err := g.w.Write(b); err != nil {
		return err
	}
	for range controls {
		if err := g.row(); err != nil {
			return err
		}
	}
	return nil
}

// controlEvidence writes, per control, its statement, count, first and last
// occurrence and the sequences of its evidence, read back from the spool.
//
// CSV gives each control a control_evidence row and then one evidence row
// per entry: a spreadsheet filters rows easily, while a cell of joined
// sequences would overflow the 32,767 characters a spreadsheet cell holds.
func (g *gen) controlEvidence(controls []Control, ev *evidence) error {
	var total int64
	if g.csv == nil {
		g.key("control_evidence")
		g.w.WriteByte('{')
	}
	for i, c := range controls {
		s := &ev.spools[i]
		total += s.count
		var first, last time.Time
		if s.count > 0 {
			first, last = time.UnixMicro(s.first), time.UnixMicro(s.last)
		}
		if g.csv != nil {
			g.begin("control_evidence")
			g.rec[colFramework] = c.Framework
			g.text(colControlID, c.ID)
			g.text(colStatement, c.Statement)
			g.num(colCount, s.count)
			g.when(colFirst, first)
			g.when(colLast, last)
			g.controlColumns(c)
			if err := g.flushRow(); err != nil {
				return err
			}
			// Evidence rows are as many as the events they cite: written
			// in column order straight into the line, as csvEvent does.
			// Each row carries action, outcome, actor and resource, so
			// that it reads without looking the sequence up.
			err := ev.each(i, func(e *cited) error {
				b := append(g.csv.line[:0], "evidence"...)
				b = commas(b, colRecordType, colSequence)
				b = strconv.AppendInt(b, e.seq, 10)
				b = append(b, ',')
				b = appendTime(b, e.at)
				b = commas(b, colOccurredAt, colAction)
				for j, f := range [...][]byte{e.action, e.outcome, e.actorID, e.actorType, e.resourceType, e.resourceID} {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendTextCell(b, string(f))
				}
				b = commas(b, colResourceID, colFramework)
				b = appendCSVField(b, c.Framework)
				b = append(b, ',')
				b = appendTextCell(b, c.ID)
				b = commas(b, colControlID, colActorName)
				b = appendTextCell(b, string(e.actorName))
				b = commas(b, colActorName, numColumns-1)
				if err := g.csv.flush(b); err != nil {
					return err
				}
				return g.row()
			})
			if err != nil {
				return err
			}
			continue
		}
		b := g.buf[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendString(b, c.ID)
		b = append(b, `: {"statement": `...)
		b = appendString(b, c.Statement)
		b = append(b, `, "title": `...)
		b = appendString(b, c.Title)
		b = append(b, `, "log_evidence": `...)
		b = appendString(b, c.Kind())
		b = append(b, `, "evidence_basis": `...)
		b = appendString(b, c.EvidenceBasis)
		if c.Kind() == LogConfiguration {
			b = append(b, `, "transport": {"tls": `...)
			b = strconv.AppendBool(b, g.req.Transport.TLS)
			b = append(b, `, "min_version": `...)
			b = appendString(b, g.req.Transport.MinVersion)
			b = append(b, '}')
		}
		b = append(b, `, "count": `...)
		b = strconv.AppendInt(b, s.count, 10)
		b = append(b, `, "first_occurrence": `...)
		b = appendOptTime(b, first)
		b = append(b, `, "last_occurrence": `...)
		b = appendOptTime(b, last)
		b = append(b, `, "sequences": [`...)
		if err := g.rowWrite(b); err != nil {
			return err
		}
		sep := false
		err := ev.each(i, func(e *cited) error {
			b := g.buf[:0]
			if sep {
				b = append(b, ", "...)
			}
			sep = true
			b = strconv.AppendInt(b, e.seq, 10)
			return g.rowWrite(b)
		})
		if err != nil {
			return err
		}
		g.w.WriteString("]}")
	}
	if g.csv == nil {
		if len(controls) > 0 {
			g.w.WriteString("\n  ")
		}
		g.w.WriteByte('}')
	}
	g.sum.Counts["control_evidence"] = total
	return nil
}

// controlColumns fills what a control and control_evidence row say about
// the control beyond its id and statement; the transport columns only for
// a control whose evidence is exportd's configuration.
func (g *gen) controlColumns(c Control) {
	g.text(colTitle, c.Title)
	g.rec[colLogEvidence] = c.Kind()
	g.text(colEvidenceBasis, c.EvidenceBasis)
	if c.Kind() == LogConfiguration {
		g.rec[colTLS] = strconv.FormatBool(g.req.Transport.TLS)
		g.text(colTLSMinVersion, g.req.Transport.MinVersion)
	}
}

// rowWrite writes b as the bytes of one row (JSON's counterpart of a CSV row).
func (g *gen) rowWrite(b []byte) error {
	g.buf = b
	if _, err := g.w.Write(b); err != nil {
		return err
	}
	return g.row()
}

func appendOptTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, t)
	return append(b, '"')
}
