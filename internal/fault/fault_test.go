package fault_test

import (
	"strings"
	"testing"

	"github.com/exportd/exportd/internal/fault"
)

func TestEcho(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"job_123", `"job_123"`},
		{"job_\x00x", `"job_\x00x"`},
		{"job_\xffx", `"job_\xffx"`},
		{"line\nbreak", `"line\nbreak"`},
		{strings.Repeat("j", 10000), `"` + strings.Repeat("j", 64) + `"…`},
		{strings.Repeat("é", 100), `"` + strings.Repeat("é", 64) + `"…`},
		{strings.Repeat("j", 64), `"` + strings.Repeat("j", 64) + `"`},
	} {
		if got := fault.Echo(tc.in); got != tc.want {
			t.Errorf("Echo(%.20q) = %.100q, want %.100q", tc.in, got, tc.want)
		}
	}
}
