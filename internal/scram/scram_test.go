package scram

import (
	"context"
	"errors"
	"testing"

	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// converse runs franz-go's SCRAM client against a Conversation. It returns
// the server's error at the proof.
func converse(t *testing.T, m Mechanism, user, clientPass, serverPass string, known bool) error {
	t.Helper()
	auth := kscram.Auth{User: user, Pass: clientPass}
	mech := auth.AsSha256Mechanism()
	if m.Name == SHA512.Name {
		mech = auth.AsSha512Mechanism()
	}
	sess, first, err := mech.Authenticate(context.Background(), "broker")
	if err != nil {
		t.Fatal(err)
	}
	conv := m.NewConversation([]byte("fake"))
	gotUser, _, err := conv.ParseFirst(first)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	if gotUser != user {
		t.Fatalf("user %q, want %q", gotUser, user)
	}
	cred, err := m.NewCredential(serverPass)
	if err != nil {
		t.Fatal(err)
	}
	done, final, err := sess.Challenge(conv.Challenge(cred, known))
	if err != nil || done {
		t.Fatalf("client on server-first: done %v, %v", done, err)
	}
	serverFinal, err := conv.Final(final)
	if err != nil {
		return err
	}
	if done, _, err := sess.Challenge(serverFinal); err != nil || !done {
		t.Fatalf("client rejects the server's signature: done %v, %v", done, err)
	}
	return nil
}

func TestConversation(t *testing.T) {
	for _, m := range Mechanisms {
		t.Run(m.Name, func(t *testing.T) {
			if err := converse(t, m, "key-1,=x", "s3cret", "s3cret", true); err != nil {
				t.Fatalf("right secret refused: %v", err)
			}
			if err := converse(t, m, "key-1", "wrong", "s3cret", true); !errors.Is(err, ErrProof) {
				t.Fatalf("wrong secret: %v, want ErrProof", err)
			}
			if err := converse(t, m, "key-1", "s3cret", "s3cret", false); !errors.Is(err, ErrProof) {
				t.Fatalf("unknown user: %v, want ErrProof", err)
			}
		})
	}
}

func TestUnknownUserSaltIsStable(t *testing.T) {
	a, b := SHA256.NewConversation([]byte("k")), SHA256.NewConversation([]byte("k"))
	for _, c := range []*Conversation{a, b} {
		if _, _, err := c.ParseFirst([]byte("n,,n=ghost,r=abc")); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := string(a.Challenge(Credential{}, false)), string(b.Challenge(Credential{}, false))
	strip := func(s string) string { return s[len("r=abc")+24:] } // drop the nonces
	if strip(sa) != strip(sb) {
		t.Fatalf("made-up salts differ: %q vs %q", sa, sb)
	}
}

func TestMalformed(t *testing.T) {
	for _, msg := range []string{
		"", "n", "n,", "x,,n=u,r=a", "p=tls-unique,,n=u,r=a", "n,,r=a", "n,,n=,r=a", "n,,n=u,r=",
		"n,,n=u=2,r=a", "n,,n=u,r=a,tokenauth=true", "n,b=x,n=u,r=a", "n,,m=ext,n=u,r=a",
	} {
		if _, _, err := SHA256.NewConversation(nil).ParseFirst([]byte(msg)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseFirst(%q) = %v, want ErrMalformed", msg, err)
		}
	}
	c := SHA256.NewConversation(nil)
	if _, _, err := c.ParseFirst([]byte("n,,n=u,r=abc")); err != nil {
		t.Fatal(err)
	}
	c.Challenge(Credential{}, false)
	for _, msg := range []string{"", "c=biws,r=abc", "c=biws,r=wrong,p=AAAA", "c=eCws,r=" + c.nonce + ",p=AAAA", "c=biws,r=" + c.nonce + ",p=!!"} {
		if _, err := c.Final([]byte(msg)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Final(%q) = %v, want ErrMalformed", msg, err)
		}
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	cs, err := NewCredentials("pw")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCredentials(cs.Marshal())
	if err != nil || len(back) != 2 || string(back[SHA512.Name].StoredKey) != string(cs[SHA512.Name].StoredKey) {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if _, err := ParseCredentials([]byte("{")); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// FuzzConversation: no client message panics the server side.
func FuzzConversation(f *testing.F) {
	f.Add([]byte("n,,n=u,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=x,n=u=2C,r=a"), []byte("c=eSxhPXgs,r=a,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		c := SHA512.NewConversation([]byte("k"))
		if _, _, err := c.ParseFirst(first); err != nil {
			return
		}
		c.Challenge(Credential{}, false)
		if _, err := c.Final(final); err == nil {
			t.Fatal("an unknown user authenticated")
		}
	})
}
