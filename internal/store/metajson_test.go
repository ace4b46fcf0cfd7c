package store

import (
	"bytes"
	"testing"
)

var canonicalCorpus = []string{
	`{}`, ` { } `, `{"a": 1}`, `{"b": 1, "aa": 2}`, `{"ticket": "SEC-1234", "reason": "scheduled review"}`,
	`{"a":"<x>"}`, `{"a": 1.0}`, `{"a": 1e21}`, `{"a": -0}`, `{"a": 0}`, `{"a": -12}`, `{"a": 0012}`,
	`{"a": 1234567890123456}`, `{"a": [1, 2]}`, `{"a": {"b": null}}`, `{"a": true, "b": false, "c": null}`,
	`{"a": 1, "a": 2}`, `{"é": 1}`, `{"a": "\u2028"}`, `{"a": "x\"y"}`, `null`, `[]`, `{"a": tru}`, `{"a" 1}`,
	`{"a": 1,}`, `{"a": 1} x`, `{"B": 1, "a": 2, "_": 3, "1": 4}`,
}

// FuzzAppendCanonical checks that the fast path gives what CanonicalJSON
// gives whenever it takes an input, and refuses what is not JSON.
func FuzzAppendCanonical(f *testing.F) {
	for _, s := range canonicalCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := appendFlatCanonical([]byte("x"), []byte(s))
		want, err := CanonicalJSON([]byte(s))
		if !ok {
			if string(fast) != "x" {
				t.Fatalf("refused %q but changed dst to %q", s, fast)
			}
			return
		}
		if err != nil {
			t.Fatalf("fast path took %q, which is not JSON: %v", s, err)
		}
		if !bytes.Equal(fast[1:], want) {
			t.Fatalf("fast path gave %s for %q, CanonicalJSON %s", fast[1:], s, want)
		}
	})
}

func TestAppendCanonical(t *testing.T) {
	t.Parallel()
	fast := 0
	for _, s := range canonicalCorpus {
		want, werr := CanonicalJSON([]byte(s))
		got, err := appendCanonical(nil, []byte(s))
		if (err != nil) != (werr != nil) {
			t.Errorf("%q: error %v, CanonicalJSON's %v", s, err, werr)
			continue
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if _, ok := appendFlatCanonical(nil, []byte(s)); ok {
			fast++
		}
	}
	if fast < 8 {
		t.Errorf("the fast path took only %d inputs of the corpus", fast)
	}
}
