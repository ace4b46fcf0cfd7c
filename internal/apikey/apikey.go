// Package apikey parses, mints and checks exportd API keys of the form
// tl_live_<key id>_<secret> or tl_test_<key id>_<secret>. Only the SHA-256 of
// the secret is ever stored; the key id finds the row.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

// Prefixes of live and test (sandbox) keys.
const (
	LivePrefix = "tl_live_"
	TestPrefix = "tl_test_"
)

const (
	idBytes     = 10 // 16 base32 characters
	secretBytes = 32 // the spec's minimum: 32 random bytes
	idLen       = 16
	secretLen   = 52 // base32 of 32 bytes, no padding
)

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformed says a string is not an API key at all.
var ErrMalformed = errors.New("malformed API key")

// Key is a parsed API key.
type Key struct {
	Live   bool
	ID     string
	Secret string
}

// String returns the key as a client sends it.
func (k Key) String() string {
	p := TestPrefix
	if k.Live {
		p = LivePrefix
	}
	return p + k.ID + "_" + k.Secret
}

// Parse splits a header value into a key. It accepts exactly the shape New
// produces, so that nothing else reaches the database lookup.
func Parse(s string) (Key, error) {
	var k Key
	switch {
	case strings.HasPrefix(s, LivePrefix):
		k.Live = true
		s = s[len(LivePrefix):]
	case strings.HasPrefix(s, TestPrefix):
		s = s[len(TestPrefix):]
	default:
		return Key{}, ErrMalformed
	}
	if len(s) != idLen+1+secretLen || s[idLen] != '_' {
		return Key{}, ErrMalformed
	}
	k.ID, k.Secret = s[:idLen], s[idLen+1:]
	if !valid(k.ID) || !valid(k.Secret) {
		return Key{}, ErrMalformed
	}
	return k, nil
}

func valid(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// New mints a key with a random id and a secret of 32 random bytes.
func New(live bool) Key {
	id := make([]byte, idBytes)
	sec := make([]byte, secretBytes)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(id)
	_, _ = rand.Read(sec)
	return Key{Live: live, ID: enc.EncodeToString(id), Secret: enc.EncodeToString(sec)}
}

// Hash is what is stored for a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Matches compares a presented secret with a stored hash in constant time.
func Matches(secret string, stored []byte) bool {
	h := Hash(secret)
	return subtle.ConstantTimeCompare(h, stored) == 1
}

// RandomID returns a prefix followed by n random base32 characters, for
// unguessable identifiers such as job ids.
func RandomID(prefix string, n int) string {
	b := make([]byte, (n*5+7)/8)
	_, _ = rand.Read(b)
	return prefix + enc.EncodeToString(b)[:n]
}
