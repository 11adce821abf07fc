// Package seal encrypts secrets the control plane must keep usable (JWT
// signing keys, webhook signing secrets) before they are stored, with a
// key-encryption key (KEK) that never reaches the database. A copy of the
// database (a backup, a replica, a leaked dump) then holds no usable
// secret without the KEK.
//
// A sealed value is printable ASCII, so it fits text and bytea columns:
//
//	eddy:sealed:v1:<kek-id>:<payload>
//	|-- Prefix --|  |        |
//	              version    8 hex digits naming the KEK: the first 4 bytes
//	                         of SHA-256("eddy kek id\x00" || KEK)
//
//	payload = base64url, unpadded, of
//	+------------+--------------------------------+----------+
//	| nonce (12) | AES-256-GCM ciphertext (n)     | tag (16) |
//	+------------+--------------------------------+----------+
//
// The nonce is random for every Seal (2^32 seals under one KEK keep the
// chance of a repeated nonce below 2^-32). The associated data, which is
// authenticated but not stored, names the row a value belongs to (e.g.
// "signing_key/<kid>"), so a sealed value copied into another row does not
// open. The KEK's id lets a later KEK rotation tell which key sealed a
// value; today a Sealer holds one KEK.
//
// Values stored before sealing existed do not start with Prefix: Open
// returns them unchanged, and the owners of such rows seal them at start.
//
// A Sealer is immutable and safe for concurrent use. The nil *Sealer has
// no key: it seals nothing and opens only plain values, failing with
// ErrNoKey, so a component built without a Sealer fails loudly rather
// than store secrets in plain.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed value; a stored value without it is plain.
const Prefix = "eddy:sealed:"

const version = "v1"

// KeySize is the size of a KEK: AES-256.
const KeySize = 32

var (
	// ErrNoKey: a secret was to be sealed, or a sealed one opened,
	// without a KEK.
	ErrNoKey = errors.New("seal: no key-encryption key")
	// ErrWrongKey: the value was sealed with another KEK.
	ErrWrongKey = errors.New("seal: sealed with another key-encryption key")
	// ErrOpen: the value is malformed, was tampered with, or belongs to
	// another row (associated data).
	ErrOpen = errors.New("seal: cannot open sealed value")
)

// Sealer seals and opens secrets with one KEK, or (Plaintext) stores
// them in plain.
type Sealer struct {
	id    string
	aead  cipher.AEAD
	plain bool
}

// New returns a Sealer for a KEK of KeySize bytes.
func New(kek []byte) (*Sealer, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("seal: key-encryption key has %d bytes, want %d", len(kek), KeySize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(append([]byte("eddy kek id\x00"), kek...))
	return &Sealer{id: hex.EncodeToString(h[:4]), aead: aead}, nil
}

// Plaintext returns a Sealer that stores secrets as they are, for
// development (--insecure-plaintext-secrets). It cannot open sealed values.
func Plaintext() *Sealer { return &Sealer{plain: true} }

// NewKey returns a fresh random KEK.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// ParseKey decodes a KEK written as base64 (standard or URL alphabet,
// padded or not) or hex; surrounding white space is ignored. Its errors
// never contain the input.
func ParseKey(text []byte) ([]byte, error) {
	s := string(bytes.TrimSpace(text))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("seal: key-encryption key decodes to %d bytes, want %d", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("seal: key-encryption key is neither base64 nor hex of %d bytes", KeySize)
}

// ID names the Sealer's KEK ("" without one).
func (s *Sealer) ID() string {
	if s == nil {
		return ""
	}
	return s.id
}

// Keyed reports whether s seals (it has a KEK).
func (s *Sealer) Keyed() bool { return s != nil && s.aead != nil }

// IsSealed reports whether a stored value is sealed.
func IsSealed(stored []byte) bool { return bytes.HasPrefix(stored, []byte(Prefix)) }

// Seal returns the stored form of plaintext for the row aad names.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	switch {
	case s == nil:
		return nil, ErrNoKey
	case s.plain:
		return bytes.Clone(plaintext), nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce)
	raw := s.aead.Seal(nonce, nonce, plaintext, aad)
	head := Prefix + version + ":" + s.id + ":"
	out := make([]byte, len(head)+base64.RawURLEncoding.EncodedLen(len(raw)))
	copy(out, head)
	base64.RawURLEncoding.Encode(out[len(head):], raw)
	return out, nil
}

// Open returns the plaintext of a stored value: a sealed one is opened
// with aad, a plain one (stored before sealing) is returned as it is.
func (s *Sealer) Open(stored, aad []byte) ([]byte, error) {
	if !IsSealed(stored) {
		return bytes.Clone(stored), nil
	}
	if !s.Keyed() {
		return nil, fmt.Errorf("%w: the value is sealed", ErrNoKey)
	}
	ver, rest, _ := strings.Cut(string(stored[len(Prefix):]), ":")
	id, payload, ok := strings.Cut(rest, ":")
	switch {
	case ver != version || !ok:
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	case id != s.id:
		return nil, fmt.Errorf("%w: sealed with %q, this one is %q", ErrWrongKey, id, s.id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: bad payload", ErrOpen)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
