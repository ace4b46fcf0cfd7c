package reports

// hipaa writes the HIPAA report: the covered entity, the audit trail of
// every event touching protected health information, and evidence for the
// 164.308 and 164.312 safeguards.
//
// Evidence is drawn from the audit trail and from every access and api
// event of the period, PHI or not: log-in monitoring, authentication and
// incident procedures are shown by logins, failed keys and denials, and
// activity review by audit exports, which rarely touch PHI themselves. The
// non-PHI events a control cites are written in evidence_events, so that
// every sequence control_evidence cites is in the report. Non-PHI data
// events (the bulk of most logs) are not read.
func (g *gen) hipaa() error {
	phi := g.filter()
	phi.PHIOnly = true
	nPHI, err := g.src.CountEvents(g.ctx, phi)
	if err != nil {
		return err
	}
	entity := lenientHIPAA(g.req.HIPAA)
	controls := catalog.Framework(TypeHIPAA)
	ev := newEvidence(controls)
	defer func() { _ = ev.close() }() // temporary spool files; removal failure changes nothing in the report

	if g.csv != nil {
		if err := g.csvHeader(nPHI, -1); err != nil {
			return err
		}
		if err := g.csvEntity(entity); err != nil {
			return err
		}
	} else {
		if err := g.header(); err != nil {
			return err
		}
		if err := g.row(); err != nil {
			return err
		}
		if err := g.value("covered_entity", entity); err != nil {
			return err
		}
		if err := g.row(); err != nil {
			return err
		}
		for range 2 { // the officers, one CSV row each
			if err := g.row(); err != nil {
				return err
			}
		}
		g.intKey("audit_entries", nPHI)
	}
	if err := g.controls(controls); err != nil {
		return err
	}
	if err := g.events("audit_trail", "audit_entry", phi, ev, nPHI); err != nil {
		return err
	}
	if err := g.eventSection("evidence_events", "evidence_event", g.citedEvents(ev), ev, nil, -1); err != nil {
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

// citedEvents reads the period's access events, then its api events, and
// passes on the non-PHI ones some control cites (PHI events are in the
// audit trail already). Each category is one evidence pass.
func (g *gen) citedEvents(ev *evidence) func(func(*Event) error) error {
	return func(fn func(*Event) error) error {
		var n int64
		for _, category := range []string{"access", "api"} {
			f := g.filter()
			f.Category = category
			ev.nextPass()
			err := g.src.Events(g.ctx, f, func(e *Event) error {
				if n++; n%progressEvery == 0 {
					if err := g.ctx.Err(); err != nil {
						return err
					}
				}
				if e.PHI || len(ev.match.match(e)) == 0 {
					return nil
				}
				return fn(e)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func (g *gen) csvEntity(p HIPAAProfile) error {
	g.begin("covered_entity")
	g.text(colName, p.Name)
	g.text(colEntityType, p.Type)
	ids := make([]string, len(p.Identifiers))
	for i, id := range p.Identifiers {
		ids[i] = id.String()
	}
	g.list(colIdentifiers, ids)
	if err := g.flushRow(); err != nil {
		return err
	}
	if err := g.csvContact("privacy_officer", p.PrivacyOfficer); err != nil {
		return err
	}
	return g.csvContact("security_officer", p.SecurityOfficer)
}

func (g *gen) csvContact(role string, c Contact) error {
	g.begin("contact")
	g.rec[colRole] = role
	g.text(colName, c.Name)
	g.text(colEmail, c.Email)
	g.text(colPhone, c.Phone)
	g.text(colAddress, c.Address)
	return g.flushRow()
}
