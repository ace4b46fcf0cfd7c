package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestReplicaID accepts what a pod or host name holds and refuses a '/',
// which would break the lease owner's prefix, and names longer than a DNS
// label.
func TestReplicaID(t *testing.T) {
	t.Setenv("EXPORTD_REPLICA_ID", "")
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"", true},
		{"exportd-0", true},
		{"r1.eu_west", true},
		{"a/b", false},
		{"exportd 0", false},
		{strings.Repeat("r", 63), true},
		{strings.Repeat("r", 64), false},
	} {
		var c Config
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.Serve(fs)
		if err := fs.Parse([]string{"--replica-id", tt.id}); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("--replica-id %q: Validate() = %v, want ok %v", tt.id, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--replica-id") {
			t.Errorf("--replica-id %q: error %q does not name the flag", tt.id, err)
		}
	}
}
