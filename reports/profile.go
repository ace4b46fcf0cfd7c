package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// GDPRProfile is the shape of a tenant's GDPR profile (Request.GDPR): what
// an Article 30 record of processing activities needs from the controller.
// Others store and validate profiles with it; Generate reads it leniently.
type GDPRProfile struct {
	Controller           Controller           `json:"controller"`
	ProcessingActivities []ProcessingActivity `json:"processing_activities"`
}

// Controller is the data controller of a GDPR profile, with its data
// protection officer and, for controllers outside the EU, its representative.
type Controller struct {
	Name           string   `json:"name"`
	Address        string   `json:"address,omitempty"`
	Email          string   `json:"email,omitempty"`
	Phone          string   `json:"phone,omitempty"`
	DPO            Contact  `json:"dpo"`
	Representative *Contact `json:"representative,omitempty"`
}

// Contact is a person or office that can be reached.
type Contact struct {
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Address string `json:"address,omitempty"`
}

// ProcessingActivity is one entry of the record of processing activities
// (GDPR Article 30(1)).
type ProcessingActivity struct {
	Name                   string     `json:"name,omitempty"`
	Purpose                string     `json:"purpose"`
	LegalBasis             string     `json:"legal_basis"` // e.g. "consent", "contract", "legal_obligation", "legitimate_interests"
	DataCategories         []string   `json:"data_categories"`
	DataSubjects           []string   `json:"data_subjects"`
	Recipients             []string   `json:"recipients"`
	ThirdPartyDisclosures  []string   `json:"third_party_disclosures"`
	InternationalTransfers []Transfer `json:"international_transfers"`
	RetentionPeriod        string     `json:"retention_period"` // free text, e.g. "6 years after contract end"
	SecurityMeasures       []string   `json:"security_measures"`
}

// Transfer is a transfer of personal data to a third country or an
// international organisation, with its safeguards (Article 46).
type Transfer struct {
	Country    string `json:"country"`
	Recipient  string `json:"recipient,omitempty"`
	Safeguards string `json:"safeguards,omitempty"` // e.g. "standard contractual clauses"
}

// String renders a transfer for one CSV cell.
func (t Transfer) String() string {
	s := t.Country
	if t.Recipient != "" {
		s += " to " + t.Recipient
	}
	if t.Safeguards != "" {
		s += " (" + t.Safeguards + ")"
	}
	return s
}

// HIPAAProfile is the shape of a tenant's HIPAA profile (Request.HIPAA).
type HIPAAProfile struct {
	Name            string       `json:"name"`
	Type            string       `json:"type"` // EntityCovered or EntityBusinessAssociate
	Identifiers     []Identifier `json:"identifiers"`
	PrivacyOfficer  Contact      `json:"privacy_officer"`
	SecurityOfficer Contact      `json:"security_officer"`
}

// HIPAA entity types.
const (
	EntityCovered           = "covered_entity"
	EntityBusinessAssociate = "business_associate"
)

// Identifier is an identifier of a covered entity, such as its NPI or EIN.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// String renders an identifier for one CSV cell.
func (i Identifier) String() string { return i.Type + ":" + i.Value }

// ParseGDPRProfile decodes a stored GDPR profile strictly: unknown fields
// and wrong types are errors, so a profile is checked when it is saved
// rather than when an auditor opens a report.
func ParseGDPRProfile(m map[string]any) (GDPRProfile, error) {
	var p GDPRProfile
	if err := decodeProfile(m, &p, true); err != nil {
		return p, fmt.Errorf("parse gdpr profile: %w", err)
	}
	return p, p.Validate()
}

// Validate checks the rules a record of processing activities needs.
func (p GDPRProfile) Validate() error {
	var errs []error
	if p.Controller.Name == "" {
		errs = append(errs, errors.New("controller.name is required"))
	}
	for i, a := range p.ProcessingActivities {
		if a.Purpose == "" {
			errs = append(errs, fmt.Errorf("processing_activities[%d].purpose is required", i))
		}
		if a.LegalBasis == "" {
			errs = append(errs, fmt.Errorf("processing_activities[%d].legal_basis is required", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validate gdpr profile: %w", err)
	}
	return nil
}

// ParseHIPAAProfile decodes a stored HIPAA profile strictly.
func ParseHIPAAProfile(m map[string]any) (HIPAAProfile, error) {
	var p HIPAAProfile
	if err := decodeProfile(m, &p, true); err != nil {
		return p, fmt.Errorf("parse hipaa profile: %w", err)
	}
	return p, p.Validate()
}

// Validate checks that the entity is named and of a known type.
func (p HIPAAProfile) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if p.Type != EntityCovered && p.Type != EntityBusinessAssociate {
		errs = append(errs, fmt.Errorf("type must be %q or %q", EntityCovered, EntityBusinessAssociate))
	}
	for i, id := range p.Identifiers {
		if id.Type == "" || id.Value == "" {
			errs = append(errs, fmt.Errorf("identifiers[%d] needs a type and a value", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validate hipaa profile: %w", err)
	}
	return nil
}

// decodeProfile round-trips a stored JSON object into a profile struct.
// Lenient decoding keeps whatever fields decode, so a report over a damaged
// or missing profile shows empty sections instead of failing.
func decodeProfile(m map[string]any, v any, strict bool) error {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(v)
}

func lenientGDPR(m map[string]any) GDPRProfile {
	var p GDPRProfile
	_ = decodeProfile(m, &p, false) // a report over a broken profile still renders
	for i := range p.ProcessingActivities {
		a := &p.ProcessingActivities[i]
		a.DataCategories = nonNil(a.DataCategories)
		a.DataSubjects = nonNil(a.DataSubjects)
		a.Recipients = nonNil(a.Recipients)
		a.ThirdPartyDisclosures = nonNil(a.ThirdPartyDisclosures)
		a.SecurityMeasures = nonNil(a.SecurityMeasures)
		a.InternationalTransfers = nonNil(a.InternationalTransfers)
	}
	p.ProcessingActivities = nonNil(p.ProcessingActivities)
	return p
}

func lenientHIPAA(m map[string]any) HIPAAProfile {
	var p HIPAAProfile
	_ = decodeProfile(m, &p, false) // a report over a broken profile still renders
	p.Identifiers = nonNil(p.Identifiers)
	return p
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ProfileError says that a report needs a tenant profile that is missing or
// incomplete: which report, which profile and which fields.
type ProfileError struct {
	ReportType string   // TypeGDPR or TypeHIPAA
	Profile    string   // "GDPR profile" or "HIPAA profile"
	Missing    []string // fields to set, e.g. "controller.name"
}

func (e *ProfileError) Error() string {
	return fmt.Sprintf("a %s report needs the tenant's %s with %s set", strings.ToUpper(e.ReportType), e.Profile, strings.Join(e.Missing, " and "))
}

// RequireProfile checks that req has the profile its report type needs: a
// GDPR record of processing names its controller (Article 30(1)(a)); a HIPAA
// report names the covered entity or business associate and says which it
// is. A report without them would not say whose record it is, so it is
// refused rather than produced with empty fields. It returns a
// *ProfileError, or nil.
func RequireProfile(reportType string, gdpr, hipaa map[string]any) error {
	switch reportType {
	case TypeGDPR:
		if p := lenientGDPR(gdpr); strings.TrimSpace(p.Controller.Name) == "" {
			return &ProfileError{ReportType: TypeGDPR, Profile: "GDPR profile", Missing: []string{"controller.name"}}
		}
	case TypeHIPAA:
		p := lenientHIPAA(hipaa)
		var missing []string
		if strings.TrimSpace(p.Name) == "" {
			missing = append(missing, "name")
		}
		if p.Type != EntityCovered && p.Type != EntityBusinessAssociate {
			missing = append(missing, "type ("+EntityCovered+" or "+EntityBusinessAssociate+")")
		}
		if len(missing) > 0 {
			return &ProfileError{ReportType: TypeHIPAA, Profile: "HIPAA profile", Missing: missing}
		}
	}
	return nil
}
