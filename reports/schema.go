package reports

import (
	"embed"
)

//go:embed schema/*.schema.json schema/csv-columns.md
var schemaFS embed.FS

// JSONSchema returns the JSON Schema (draft 2020-12) of the JSON reports of
// reportType, or nil for an unknown type. The schemas are published with
// the generator and change with GeneratorVersion.
func JSONSchema(reportType string) []byte {
	switch reportType {
	case TypeSOC2, TypeGDPR, TypeHIPAA:
	default:
		return nil
	}
	b, err := schemaFS.ReadFile("schema/" + reportType + ".schema.json")
	if err != nil {
		return nil
	}
	return b
}

// CSVColumns returns the CSV column dictionary (Markdown): every column of
// Columns, which record types fill it, and how to read it back.
func CSVColumns() []byte {
	b, _ := schemaFS.ReadFile("schema/csv-columns.md") // embedded, cannot fail
	return b
}
