package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func mustNew(t *testing.T, kek []byte) *Sealer {
	t.Helper()
	s, err := New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := mustNew(t, NewKey())
	secret, aad := []byte("\x30\x81\x87 a PKCS#8 key"), []byte("signing_key/kid_1")
	sealed, err := s.Seal(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || !strings.HasPrefix(string(sealed), Prefix+"v1:"+s.ID()+":") || len(s.ID()) != 8 {
		t.Fatalf("sealed = %q, want %sv1:<8 hex>:...", sealed, Prefix)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value holds the plaintext")
	}
	again, _ := s.Seal(secret, aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// A value stored before sealing is plain and opens as it is.
	if got, err := s.Open([]byte("whsec_0123"), aad); err != nil || string(got) != "whsec_0123" {
		t.Fatalf("Open(plain) = %q, %v", got, err)
	}
}

// TestOpenRefuses: a sealed value that was changed, belongs to another
// row or was sealed with another KEK does not open.
func TestOpenRefuses(t *testing.T) {
	kek := NewKey()
	s := mustNew(t, kek)
	aad := []byte("budget_alert/ba_1")
	sealed, err := s.Seal([]byte("whsec_secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	head := len(Prefix + "v1:" + s.ID() + ":")
	for _, tc := range []struct {
		name   string
		stored []byte
		aad    string
		opener *Sealer
		want   error
	}{
		{"ciphertext flipped", flip(len(sealed) - 20), string(aad), s, ErrOpen},
		{"nonce flipped", flip(head + 2), string(aad), s, ErrOpen},
		{"truncated", sealed[:head+10], string(aad), s, ErrOpen},
		{"not base64", append(bytes.Clone(sealed[:head]), "!!!!"...), string(aad), s, ErrOpen},
		{"unknown version", []byte(Prefix + "v9:" + s.ID() + ":AAAA"), string(aad), s, ErrOpen},
		{"another row", sealed, "budget_alert/ba_2", s, ErrOpen},
		{"another KEK", sealed, string(aad), mustNew(t, NewKey()), ErrWrongKey},
		{"another KEK under the same id", append(bytes.Clone(sealed[:head]), sealed[head:]...), string(aad), &Sealer{id: s.id, aead: mustNew(t, NewKey()).aead}, ErrOpen},
		{"no KEK", sealed, string(aad), nil, ErrNoKey},
		{"plaintext mode", sealed, string(aad), Plaintext(), ErrNoKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opener.Open(tc.stored, []byte(tc.aad))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
		})
	}
	// The same KEK, read again, opens it.
	if got, err := mustNew(t, kek).Open(sealed, aad); err != nil || string(got) != "whsec_secret" {
		t.Fatalf("same KEK: %q, %v", got, err)
	}
}

func TestNilAndPlaintext(t *testing.T) {
	var none *Sealer
	if _, err := none.Seal([]byte("x"), nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("nil Sealer sealed: %v", err)
	}
	p := Plaintext()
	if got, err := p.Seal([]byte("x"), nil); err != nil || string(got) != "x" || p.Keyed() {
		t.Fatalf("Plaintext().Seal = %q, %v", got, err)
	}
}

func TestParseKey(t *testing.T) {
	k := NewKey()
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"base64", base64.StdEncoding.EncodeToString(k) + "\n", true},
		{"raw url base64", base64.RawURLEncoding.EncodeToString(k), true},
		{"hex", " " + hex.EncodeToString(k) + "\n", true},
		{"short", base64.StdEncoding.EncodeToString(k[:16]), false},
		{"not a key", "correct horse battery staple", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey([]byte(tc.text))
			if tc.ok != (err == nil) || tc.ok && !bytes.Equal(got, k) {
				t.Fatalf("ParseKey = %x, %v", got, err)
			}
			if err != nil && tc.text != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.text)) {
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
}

// TestConfig: the key comes from a file or --secrets-key; without one the
// error says how to make one; errors name the flag and never the key.
func TestConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "kek")
	if err := EnsureKeyFile(good); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(good); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	kek, _ := os.ReadFile(good)
	if err := EnsureKeyFile(good); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(good); !bytes.Equal(again, kek) {
		t.Fatal("EnsureKeyFile replaced an existing key")
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("hunter2-not-a-key"), 0o600)
	const secretText = "c2VjcmV0LWJ1dC1zaG9ydA==" // "secret-but-short"
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error; "" means valid
	}{
		{"file", []string{"--secrets-key-file=" + good}, ""},
		{"key", []string{"--secrets-key=" + strings.TrimSpace(string(kek))}, ""},
		{"insecure", []string{"--insecure-plaintext-secrets"}, ""},
		{"none", nil, "head -c 32 /dev/urandom"},
		{"missing file", []string{"--secrets-key-file=" + filepath.Join(dir, "nope")}, "--secrets-key-file"},
		{"malformed file", []string{"--secrets-key-file=" + bad}, "--secrets-key-file"},
		{"malformed key", []string{"--secrets-key=" + secretText}, "--secrets-key"},
		{"both", []string{"--secrets-key-file=" + good, "--secrets-key=" + strings.TrimSpace(string(kek))}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			c.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "" && c.Sealer() == nil:
				t.Fatal("no Sealer after Validate")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error with %q", err, tc.want)
			}
			for _, s := range []string{strings.TrimSpace(string(kek)), secretText, "hunter2"} {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows the key: %v", err)
				}
			}
			if v := fs.Lookup("secrets-key").Value.String(); v != "" {
				t.Fatalf("--secrets-key prints %q", v)
			}
		})
	}
}
