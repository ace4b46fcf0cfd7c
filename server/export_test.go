package server

// RulePermissions is the permission of every procedure in the rules table
// ("" for any valid key), keyed by procedure: Connect procedures and the
// plain REST handlers ("GET /v1/…"). The guard test checks each one has a
// row in the authorization matrix that expects that permission.
func RulePermissions() map[string]string {
	out := make(map[string]string, len(rules))
	for p, r := range rules {
		out[p] = r.perm
	}
	return out
}

// Names of the plain REST handlers, as the rules table keys them.
const (
	RESTDownloadProcedure = restDownloadProcedure
	RESTManifestProcedure = restManifestProcedure
	LinkDownloadProcedure = linkDownloadProcedure
)
