package reports

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"path"
)

// GeneratorVersion identifies the report generator; it changes whenever the
// bytes a given input produces change, so a manifest can say which generator
// wrote a report and which schemas apply.
const GeneratorVersion = "1.1.0"

//go:embed catalog/controls.json
var catalogJSON []byte

// CatalogVersion is the version of the embedded control catalog, for the
// manifest.
var CatalogVersion = mustCatalog().Version

// Control is one compliance control of the catalog and the audit events that
// count as evidence for it.
type Control struct {
	Framework string `json:"framework"` // soc2 or hipaa
	ID        string `json:"id"`
	// Statement is the short statement reports show (the vendor page's
	// wording for CC1.1, CC2.1, CC6.1 and CC6.2).
	Statement string `json:"statement"`
	// Title is the criterion's official title (AICPA Trust Services
	// Criteria, 45 CFR).
	Title string `json:"title"`
	// LogEvidence says what the log can show for the control: LogEvents
	// (the default) when events are its evidence, LogNone when no event
	// can evidence it, LogConfiguration when the report states exportd's
	// configuration instead.
	LogEvidence string `json:"log_evidence,omitempty"`
	// EvidenceBasis says in words what in the logs supports the control,
	// what is counted and what is not, or why the logs cannot evidence it.
	EvidenceBasis string    `json:"evidence_basis"`
	Evidence      []Pattern `json:"evidence"`
}

// What a control's evidence is (Control.LogEvidence).
const (
	LogEvents        = "events"
	LogNone          = "none"
	LogConfiguration = "configuration"
)

// Kind returns c.LogEvidence, LogEvents when unset.
func (c Control) Kind() string {
	if c.LogEvidence == "" {
		return LogEvents
	}
	return c.LogEvidence
}

// Unmapped is an action exportd writes that no control cites, and why.
type Unmapped struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// Pattern matches audit events. Empty fields match anything; Action is a
// glob as in path.Match (e.g. "apikey.*", "*.auth_failed"); PHI, when set,
// must equal the event's phi flag.
type Pattern struct {
	Category string `json:"category,omitempty"`
	Action   string `json:"action,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	PHI      *bool  `json:"phi,omitempty"`
}

// Match reports whether e is evidence for the pattern.
func (p Pattern) Match(e *Event) bool {
	if p.Category != "" && p.Category != e.Category {
		return false
	}
	if p.Outcome != "" && p.Outcome != e.Outcome {
		return false
	}
	if p.PHI != nil && *p.PHI != e.PHI {
		return false
	}
	if p.Action != "" {
		ok, _ := path.Match(p.Action, e.Action) // patterns are checked when the catalog loads
		return ok
	}
	return true
}

// Catalog is the control catalog: which controls each framework reports and
// which events are their evidence. It is data so that compliance staff can
// review and extend the mapping without reading Go.
type Catalog struct {
	Version  string    `json:"version"`
	Controls []Control `json:"controls"`
	// Unmapped lists actions exportd writes that are deliberately evidence
	// for no control, each with its reason. Every action in Actions is
	// either cited by a control's action pattern or listed here.
	Unmapped []Unmapped `json:"unmapped"`
}

// Decides says how the catalog treats an action: mapped when some control's
// action pattern matches it, or the reason it is deliberately unmapped.
// Patterns without an action (e.g. every denied event) do not decide an
// action: they cite some of its outcomes, whatever it is. Nor do patterns
// that require phi: exportd's own events never touch PHI.
func (c Catalog) Decides(action string) (mapped bool, reason string) {
	for _, ctl := range c.Controls {
		for _, p := range ctl.Evidence {
			if p.Action == "" || (p.PHI != nil && *p.PHI) {
				continue
			}
			if ok, _ := path.Match(p.Action, action); ok {
				return true, ""
			}
		}
	}
	for _, u := range c.Unmapped {
		if u.Action == action {
			return false, u.Reason
		}
	}
	return false, ""
}

// DefaultCatalog returns the catalog embedded in this build.
func DefaultCatalog() Catalog {
	c := mustCatalog()
	c.Controls = append([]Control(nil), c.Controls...)
	return c
}

// Framework returns the controls of one framework in catalog order.
func (c Catalog) Framework(framework string) []Control {
	var out []Control
	for _, ctl := range c.Controls {
		if ctl.Framework == framework {
			out = append(out, ctl)
		}
	}
	return out
}

// Validate checks that every control has an id, a statement, a known
// framework and well-formed evidence patterns, and that no pattern matches
// every event (that would make the evidence meaningless and the spool huge).
func (c Catalog) Validate() error {
	if c.Version == "" {
		return fmt.Errorf("validate catalog: missing version")
	}
	seen := map[string]bool{}
	for i, ctl := range c.Controls {
		if ctl.Framework != TypeSOC2 && ctl.Framework != TypeHIPAA {
			return fmt.Errorf("validate catalog: control %d: unknown framework %q", i, ctl.Framework)
		}
		if ctl.ID == "" || ctl.Statement == "" || ctl.Title == "" || ctl.EvidenceBasis == "" {
			return fmt.Errorf("validate catalog: control %d: missing id, statement, title or evidence_basis", i)
		}
		switch ctl.Kind() {
		case LogEvents:
			if len(ctl.Evidence) == 0 {
				return fmt.Errorf("validate catalog: control %s: no evidence patterns; say log_evidence none or configuration", ctl.ID)
			}
		case LogNone, LogConfiguration:
			if len(ctl.Evidence) > 0 {
				return fmt.Errorf("validate catalog: control %s: log_evidence %s with evidence patterns", ctl.ID, ctl.LogEvidence)
			}
		default:
			return fmt.Errorf("validate catalog: control %s: unknown log_evidence %q", ctl.ID, ctl.LogEvidence)
		}
		key := ctl.Framework + "/" + ctl.ID
		if seen[key] {
			return fmt.Errorf("validate catalog: duplicate control %s", key)
		}
		seen[key] = true
		for j, p := range ctl.Evidence {
			if p == (Pattern{}) {
				return fmt.Errorf("validate catalog: control %s: pattern %d matches every event", ctl.ID, j)
			}
			if _, err := path.Match(p.Action, ""); err != nil {
				return fmt.Errorf("validate catalog: control %s: pattern %d: %w", ctl.ID, j, err)
			}
		}
	}
	unmapped := map[string]bool{}
	for _, u := range c.Unmapped {
		if u.Action == "" || u.Reason == "" {
			return fmt.Errorf("validate catalog: unmapped action %q needs an action and a reason", u.Action)
		}
		if unmapped[u.Action] {
			return fmt.Errorf("validate catalog: action %s listed as unmapped twice", u.Action)
		}
		unmapped[u.Action] = true
		if mapped, _ := c.Decides(u.Action); mapped {
			return fmt.Errorf("validate catalog: action %s is listed as unmapped but a control cites it", u.Action)
		}
	}
	return nil
}

func mustCatalog() Catalog {
	var c Catalog
	if err := json.Unmarshal(catalogJSON, &c); err != nil {
		panic("reports: embedded control catalog: " + err.Error())
	}
	if err := c.Validate(); err != nil {
		panic("reports: embedded control catalog: " + err.Error())
	}
	return c
}

// matcher maps events to the indexes of the controls they are evidence for.
// Matching globs for every event would dominate generation time, and the
// distinct (category, action, outcome, phi) tuples are few, so answers are
// cached; the cache is capped so that a log with unbounded distinct actions
// cannot grow memory.
type matcher struct {
	controls []Control
	cache    map[matchKey][]int
}

type matchKey struct {
	category, action, outcome string
	phi                       bool
}

const matchCacheMax = 4096

func newMatcher(controls []Control) *matcher {
	return &matcher{controls: controls, cache: make(map[matchKey][]int)}
}

func (m *matcher) match(e *Event) []int {
	k := matchKey{e.Category, e.Action, e.Outcome, e.PHI}
	if idx, ok := m.cache[k]; ok {
		return idx
	}
	var idx []int
	for i, ctl := range m.controls {
		for _, p := range ctl.Evidence {
			if p.Match(e) {
				idx = append(idx, i)
				break
			}
		}
	}
	if len(m.cache) < matchCacheMax {
		m.cache[k] = idx
	}
	return idx
}
