package reports

import "errors"

// soc2 writes the SOC 2 report: the page's header fields and control map,
// then the audit log, the access log and the evidence per control. Counts
// come first, as on the page, so they are taken with CountEvents before the
// rows stream.
func (g *gen) soc2() error {
	all := g.filter()
	access := all
	access.Category = "access"
	nAll, nAccess, err := g.countAccess(all, access)
	if err != nil {
		return err
	}
	controls := catalog.Framework(TypeSOC2)
	ev := newEvidence(controls)
	defer func() { _ = ev.close() }() // temporary spool files; removal failure changes nothing in the report

	if g.csv != nil {
		if err := g.csvHeader(nAll, nAccess); err != nil {
			return err
		}
	} else {
		if err := g.header(); err != nil {
			return err
		}
		g.intKey("audit_entries", nAll)
		g.intKey("access_entries", nAccess)
		if err := g.row(); err != nil { // the summary, as in CSV
			return err
		}
	}
	if err := g.controls(controls); err != nil {
		return err
	}
	// The access log is the audit log's access entries in the same order:
	// their encoded rows are spooled during the one read of the period
	// rather than read from the Source and encoded a second time.
	var spool rowSpool
	defer func() { _ = spool.close() }() // a temporary file; removal failure changes nothing in the report
	keepAccess := func(e *Event, row []byte) error {
		if e.Category != "access" {
			return nil
		}
		return spool.add(row)
	}
	readAll := func(fn func(*Event) error) error { return g.src.Events(g.ctx, all, fn) }
	if err := g.eventSection("audit_log", "audit_entry", readAll, ev, keepAccess, nAll); err != nil {
		return err
	}
	if err := g.rowSection("access_log", "access_entry", "audit_entry", spool.each, nAccess); err != nil {
		return err
	}
	if err := g.controlEvidence(controls, ev); err != nil {
		return err
	}
	if g.csv == nil {
		if err := g.endObject(); err != nil {
			return err
		}
	}
	return errors.Join(ev.close(), spool.close())
}

// countAccess counts the events of the period, and those of them in the
// access category: with one read when the Source counts by category.
func (g *gen) countAccess(all, access EventFilter) (nAll, nAccess int64, err error) {
	if cc, ok := g.src.(CategoryCounter); ok {
		m, err := cc.CountByCategory(g.ctx, all)
		if err != nil {
			return 0, 0, err
		}
		for _, n := range m {
			nAll += n
		}
		return nAll, m["access"], nil
	}
	if nAll, err = g.src.CountEvents(g.ctx, all); err != nil {
		return 0, 0, err
	}
	if nAccess, err = g.src.CountEvents(g.ctx, access); err != nil {
		return 0, 0, err
	}
	return nAll, nAccess, nil
}
