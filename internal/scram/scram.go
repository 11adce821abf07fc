// Package scram implements the server side of SASL SCRAM (RFC 5802, RFC
// 7677) for SCRAM-SHA-256 and SCRAM-SHA-512, as Kafka uses them (KIP-84):
// no channel binding, and the username is the API key id.
//
// The control plane derives a Credential from each API key's secret when it
// creates the key and stores only the salt, the iteration count and the
// StoredKey/ServerKey pair, from which a server can check a client's proof
// but cannot recover the secret. Brokers run a Conversation per
// authentication attempt.
//
// A Conversation never says whether a username exists: for unknown users it
// answers the first message with a salt derived from the username and a
// server secret, and fails only at the proof, exactly as for a wrong secret.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Mechanism is a SCRAM variant.
type Mechanism struct {
	Name string
	hash func() hash.Hash
}

// The mechanisms Eddy offers.
var (
	SHA256 = Mechanism{"SCRAM-SHA-256", sha256.New}
	SHA512 = Mechanism{"SCRAM-SHA-512", sha512.New}
)

// Mechanisms lists every supported mechanism.
var Mechanisms = []Mechanism{SHA256, SHA512}

// Lookup returns the mechanism called name.
func Lookup(name string) (Mechanism, bool) {
	for _, m := range Mechanisms {
		if m.Name == name {
			return m, true
		}
	}
	return Mechanism{}, false
}

// Iterations is the PBKDF2 iteration count of new credentials: Kafka's
// minimum. Secrets are 256 random bits, so more iterations buy nothing
// against guessing and only cost every login.
const Iterations = 4096

// Credential is what a server stores for one user and mechanism.
type Credential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// NewCredential derives a credential for password with a fresh salt.
func (m Mechanism) NewCredential(password string) (Credential, error) {
	salt := make([]byte, 24)
	rand.Read(salt)
	return m.credential(password, salt, Iterations)
}

func (m Mechanism) credential(password string, salt []byte, iter int) (Credential, error) {
	salted, err := pbkdf2.Key(m.hash, password, salt, iter, m.hash().Size())
	if err != nil {
		return Credential{}, err
	}
	clientKey := m.hmac(salted, "Client Key")
	stored := m.hash()
	stored.Write(clientKey)
	return Credential{Salt: salt, Iterations: iter, StoredKey: stored.Sum(nil), ServerKey: m.hmac(salted, "Server Key")}, nil
}

func (m Mechanism) hmac(key []byte, msg string) []byte {
	h := hmac.New(m.hash, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// Credentials are a user's credentials by mechanism name, in the JSON form
// the control plane stores.
type Credentials map[string]Credential

// NewCredentials derives a credential for every mechanism.
func NewCredentials(password string) (Credentials, error) {
	out := Credentials{}
	for _, m := range Mechanisms {
		c, err := m.NewCredential(password)
		if err != nil {
			return nil, err
		}
		out[m.Name] = c
	}
	return out, nil
}

// Marshal encodes cs for storage.
func (cs Credentials) Marshal() []byte {
	b, _ := json.Marshal(cs)
	return b
}

// ParseCredentials decodes stored credentials; empty input is none.
func ParseCredentials(b []byte) (Credentials, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var cs Credentials
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("scram: stored credentials: %w", err)
	}
	return cs, nil
}

var (
	// ErrMalformed: a client message does not follow RFC 5802's grammar.
	ErrMalformed = errors.New("scram: malformed message")
	// ErrProof: the client's proof is wrong (wrong secret or unknown user).
	ErrProof = errors.New("scram: wrong proof")
)

// Conversation is the server's side of one authentication: First, then
// Final. Not safe for concurrent use.
type Conversation struct {
	m          Mechanism
	fakeSecret []byte

	user, authz     string
	clientFirstBare string
	serverFirst     string
	nonce           string
	gs2             string
	cred            Credential
	known           bool
}

// NewConversation starts a conversation. fakeSecret keys the made-up salts
// shown for unknown users; it must stay the same across connections (and
// ideally across brokers) so that repeated probes see the same salt.
func (m Mechanism) NewConversation(fakeSecret []byte) *Conversation {
	return &Conversation{m: m, fakeSecret: fakeSecret}
}

// ParseFirst parses the client-first message and returns the username and
// the authorization identity ("" if none). Kafka's delegation-token
// extension (tokenauth) is refused.
func (c *Conversation) ParseFirst(msg []byte) (user, authz string, err error) {
	s := string(msg)
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return "", "", fmt.Errorf("%w: client-first message has no GS2 header", ErrMalformed)
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return "", "", fmt.Errorf("%w: channel binding is not supported", ErrMalformed)
	default:
		return "", "", fmt.Errorf("%w: bad GS2 channel-binding flag", ErrMalformed)
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", fmt.Errorf("%w: client-first message has no GS2 header", ErrMalformed)
	}
	if az != "" {
		if !strings.HasPrefix(az, "a=") {
			return "", "", fmt.Errorf("%w: bad authzid", ErrMalformed)
		}
		if authz, err = unescape(az[2:]); err != nil {
			return "", "", err
		}
	}
	c.gs2 = s[:len(s)-len(bare)]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", "", fmt.Errorf("%w: client-first message must be n=<user>,r=<nonce>", ErrMalformed)
	}
	if strings.HasPrefix(bare, "m=") {
		return "", "", fmt.Errorf("%w: mandatory extensions are not supported", ErrMalformed)
	}
	for _, a := range attrs[2:] {
		if strings.HasPrefix(a, "tokenauth=") {
			return "", "", fmt.Errorf("%w: delegation tokens are not supported", ErrMalformed)
		}
	}
	if user, err = unescape(attrs[0][2:]); err != nil {
		return "", "", err
	}
	cnonce := attrs[1][2:]
	if user == "" || cnonce == "" || !printable(cnonce) {
		return "", "", fmt.Errorf("%w: empty user or bad nonce", ErrMalformed)
	}
	var b [18]byte
	rand.Read(b[:])
	c.nonce = cnonce + base64.RawStdEncoding.EncodeToString(b[:])
	c.clientFirstBare, c.user, c.authz = bare, user, authz
	return user, authz, nil
}

// Challenge returns the server-first message for the user's credential;
// known false (an unknown user or one without a credential for this
// mechanism) makes up a stable salt, and Final then fails.
func (c *Conversation) Challenge(cred Credential, known bool) []byte {
	if !known {
		mac := hmac.New(sha256.New, c.fakeSecret)
		mac.Write([]byte(c.m.Name + "\x00" + c.user))
		cred = Credential{Salt: mac.Sum(nil)[:24], Iterations: Iterations}
	}
	c.cred, c.known = cred, known
	c.serverFirst = "r=" + c.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return []byte(c.serverFirst)
}

// Final checks the client-final message and returns the server-final
// message (the server's signature) when the proof is right.
func (c *Conversation) Final(msg []byte) ([]byte, error) {
	s := string(msg)
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: client-final message has no proof", ErrMalformed)
	}
	withoutProof, proofB64 := s[:i], s[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-final message must be c=<binding>,r=<nonce>,...,p=<proof>", ErrMalformed)
	}
	if attrs[0][2:] != base64.StdEncoding.EncodeToString([]byte(c.gs2)) {
		return nil, fmt.Errorf("%w: channel binding does not repeat the GS2 header", ErrMalformed)
	}
	// RFC 5802 wants the nonce repeated exactly; librdkafka sends its own
	// nonce once more in front of it, and Kafka accepts any nonce that ends
	// with the server's (which holds the server's random part), so Eddy
	// does too.
	if !strings.HasSuffix(attrs[1][2:], c.nonce) {
		return nil, fmt.Errorf("%w: nonce does not match", ErrMalformed)
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return nil, fmt.Errorf("%w: proof is not base64", ErrMalformed)
	}
	authMsg := c.clientFirstBare + "," + c.serverFirst + "," + withoutProof
	sig := c.m.hmac(c.cred.StoredKey, authMsg)
	if !c.known || len(proof) != len(sig) || len(c.cred.StoredKey) != len(sig) {
		return nil, ErrProof
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := c.m.hash()
	h.Write(clientKey)
	if subtle.ConstantTimeCompare(h.Sum(nil), c.cred.StoredKey) != 1 {
		return nil, ErrProof
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(c.m.hmac(c.cred.ServerKey, authMsg))), nil
}

// unescape decodes a saslname: "=2C" is ',' and "=3D" is '='.
func unescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in saslname", ErrMalformed)
		}
		i += 2
	}
	return b.String(), nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}
