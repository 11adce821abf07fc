package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// HowToMakeKey tells an operator how to make a KEK file.
const HowToMakeKey = "make one with: head -c 32 /dev/urandom | base64 > secrets.key && chmod 600 secrets.key"

// Config says where a process finds its KEK. Exactly one of KeyFile and
// the key itself (--secrets-key, meant for EDDY_SECRETS_KEY) is given,
// unless InsecurePlaintext is set.
type Config struct {
	// KeyFile holds the KEK, base64 or hex of KeySize bytes.
	KeyFile string
	// InsecurePlaintext stores secrets unsealed when no key is given:
	// for development only.
	InsecurePlaintext bool

	key    keyFlag // --secrets-key
	sealer *Sealer // set by Validate
}

// keyFlag holds --secrets-key. It never prints its value, so neither
// --help nor anything that prints flags shows the key, and its Set never
// fails, so no parse error can echo it.
type keyFlag struct{ text []byte }

func (k *keyFlag) String() string { return "" }
func (k *keyFlag) Type() string   { return "key" }
func (k *keyFlag) Set(v string) error {
	k.text = []byte(v)
	return nil
}

// RegisterFlags registers the KEK's flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.KeyFile, "secrets-key-file", "", "file holding the key-encryption key that seals signing keys and webhook secrets in Postgres: 32 random bytes, base64 or hex (required, unless --secrets-key or --insecure-plaintext-secrets)")
	fs.Var(&c.key, "secrets-key", "the key-encryption key itself (base64 or hex); give it as EDDY_SECRETS_KEY rather than on the command line")
	fs.BoolVar(&c.InsecurePlaintext, "insecure-plaintext-secrets", false, "store signing keys and webhook secrets unsealed when no key is given (development only)")
}

// Validate reads the KEK; Sealer returns the result. Its errors name the
// flag and never contain the key.
func (c *Config) Validate() error {
	var text []byte
	switch {
	case c.KeyFile != "" && c.key.text != nil:
		return errors.New("seal: give --secrets-key-file or --secrets-key (EDDY_SECRETS_KEY), not both")
	case c.KeyFile != "":
		b, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return fmt.Errorf("seal: --secrets-key-file: %w", err)
		}
		k, err := ParseKey(b)
		if err != nil {
			return fmt.Errorf("--secrets-key-file %s: %w; %s", c.KeyFile, err, HowToMakeKey)
		}
		text = k
	case c.key.text != nil:
		k, err := ParseKey(c.key.text)
		if err != nil {
			return fmt.Errorf("--secrets-key (EDDY_SECRETS_KEY): %w", err)
		}
		text = k
	case c.InsecurePlaintext:
		c.sealer = Plaintext()
		return nil
	default:
		return errors.New("seal: a key-encryption key is required to seal secrets at rest: give --secrets-key-file (or EDDY_SECRETS_KEY); " +
			HowToMakeKey + " (--insecure-plaintext-secrets stores them in plain, for development only)")
	}
	s, err := New(text)
	if err != nil {
		return err
	}
	c.sealer = s
	return nil
}

// Sealer returns the Sealer Validate made (nil before).
func (c *Config) Sealer() *Sealer { return c.sealer }

// EnsureKeyFile writes a fresh KEK to path (mode 0600) unless the file
// exists: eddy dev's first run, and test harnesses, make theirs with it.
func EnsureKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	_, err = f.WriteString(EncodeKey(NewKey()) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

// EncodeKey is the text form of a KEK that ParseKey reads.
func EncodeKey(kek []byte) string { return base64.StdEncoding.EncodeToString(kek) }
