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
const GeneratorVersion = "1.0.0"

//go:embed catalog/controls.json
var catalogJSON []byte

// CatalogVersion is the version of the embedded control catalog, for the
// manifest.
var CatalogVersion = mustCatalog().Version

// Control is one compliance control of the catalog and the audit events that
// count as evidence for it.
type Control struct {
	Framework string    `json:"framework"` // soc2 or hipaa
	ID        string    `json:"id"`
	Statement string    `json:"statement"`
	Evidence  []Pattern `json:"evidence"`
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
		if ctl.ID == "" || ctl.Statement == "" {
			return fmt.Errorf("validate catalog: control %d: missing id or statement", i)
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
