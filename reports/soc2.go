package reports

// soc2 writes the SOC 2 report: the page's header fields and control map,
// then the audit log, the access log and the evidence per control. Counts
// come first, as on the page, so they are taken with CountEvents before the
// rows stream.
func (g *gen) soc2() error {
	all := g.filter()
	access := all
	access.Category = "access"
	nAll, err := g.src.CountEvents(g.ctx, all)
	if err != nil {
		return err
	}
	nAccess, err := g.src.CountEvents(g.ctx, access)
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
	if err := g.events("audit_log", "audit_entry", all, ev, nAll); err != nil {
		return err
	}
	if err := g.events("access_log", "access_entry", access, nil, nAccess); err != nil {
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
	return ev.close()
}
