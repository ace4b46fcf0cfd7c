package reports

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SigningKey is one Ed25519 key of a key set. Private is nil for keys that
// only verify (as read from a published key set).
type SigningKey struct {
	ID        string
	Public    ed25519.PublicKey
	Private   ed25519.PrivateKey
	CreatedAt time.Time
	Active    bool // the key new manifests are signed with
}

// KeyID derives a key's id from its public key, so the same key has the same
// id on every replica.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519-" + hex.EncodeToString(sum[:8])
}

// KeySet is every key that manifests may be verified with; at most one of
// them signs.
type KeySet struct {
	Keys []SigningKey
}

// Signer returns the active key, if this set holds one with its private half.
func (ks KeySet) Signer() (SigningKey, bool) {
	for _, k := range ks.Keys {
		if k.Active && k.Private != nil {
			return k, true
		}
	}
	return SigningKey{}, false
}

func (ks KeySet) key(id string) (SigningKey, bool) {
	for _, k := range ks.Keys {
		if k.ID == id {
			return k, true
		}
	}
	return SigningKey{}, false
}

// SigningBytes are the bytes a manifest's signature covers: its JSON with
// the signature field empty. encoding/json writes struct fields in a fixed
// order and map keys sorted, so the bytes are the same wherever computed.
func SigningBytes(m Manifest) ([]byte, error) {
	m.Signature = ""
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b, nil
}

// Sign signs m with the set's active key.
func (ks KeySet) Sign(m *Manifest) error {
	k, ok := ks.Signer()
	if !ok {
		return errors.New("sign manifest: no active signing key")
	}
	m.SigningKeyID = k.ID
	b, err := SigningBytes(*m)
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.Private, b))
	return nil
}

// JWKS is a key set as published at /.well-known/exportd-keys.json: JSON Web
// Keys (RFC 8037, OKP / Ed25519).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key.
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
	Status    string `json:"status"` // active or retired
	CreatedAt string `json:"created_at"`
}

// Public returns the published form of the set: public keys only.
func (ks KeySet) Public() JWKS {
	out := JWKS{Keys: []JWK{}}
	for _, k := range ks.Keys {
		st := "retired"
		if k.Active {
			st = "active"
		}
		out.Keys = append(out.Keys, JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public),
			KeyID: k.ID, Use: "sig", Algorithm: "EdDSA", Status: st, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)})
	}
	return out
}

// ParseJWKS reads a published key set.
func ParseJWKS(b []byte) (KeySet, error) {
	var j JWKS
	if err := json.Unmarshal(b, &j); err != nil {
		return KeySet{}, fmt.Errorf("read key set: %w", err)
	}
	var ks KeySet
	for _, k := range j.Keys {
		if k.KeyType != "OKP" || k.Curve != "Ed25519" {
			continue
		}
		pub, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return KeySet{}, fmt.Errorf("read key set: key %s is not an Ed25519 public key", k.KeyID)
		}
		if KeyID(pub) != k.KeyID {
			return KeySet{}, fmt.Errorf("read key set: key id %s does not match its public key", k.KeyID)
		}
		at, _ := time.Parse(time.RFC3339, k.CreatedAt)
		ks.Keys = append(ks.Keys, SigningKey{ID: k.KeyID, Public: pub, CreatedAt: at, Active: k.Status == "active"})
	}
	if len(ks.Keys) == 0 {
		return KeySet{}, errors.New("read key set: no Ed25519 keys in it")
	}
	return ks, nil
}
