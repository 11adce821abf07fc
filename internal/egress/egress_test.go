package egress

import (
	"context"
	"errors"
	"github.com/spf13/pflag"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fd00:ec2::254", false},   // AWS metadata over IPv6 (unique local)
		{"fe80::1", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"224.0.0.1", false},
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"::ffff:8.8.8.8", true},
	} {
		if got := (Policy{}).Allowed(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Allowed(%s) = %v, want %v", tc.ip, got, tc.want)
		}
		if !(Policy{AllowPrivate: true}).Allowed(netip.MustParseAddr(tc.ip)) {
			t.Errorf("AllowPrivate must allow %s", tc.ip)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url       string
		forbidden bool // ErrForbidden rather than a malformed URL
	}{
		{"http://127.0.0.1/hook", true},
		{"http://127.0.0.1:8080/hook", true},
		{"http://169.254.169.254/latest/meta-data/", true},
		{"http://[::1]:9/x", true},
		{"http://[::ffff:127.0.0.1]/x", true},
		{"https://10.0.0.7/x", true},
		{"http://localhost/x", true},
		{"http://LOCALHOST./x", true},
		{"http://metadata.localhost/x", true},
		{"ftp://example.com/x", false},
		{"/relative", false},
		{"https://user:pw@example.com/x", false},
	} {
		err := Policy{}.CheckURL(ctx, tc.url)
		if err == nil {
			t.Errorf("CheckURL(%q) accepted", tc.url)
			continue
		}
		if errors.Is(err, ErrForbidden) != tc.forbidden {
			t.Errorf("CheckURL(%q) = %v, forbidden want %v", tc.url, err, tc.forbidden)
		}
	}
	for _, ok := range []string{"https://8.8.8.8/x", "https://hooks.example.com/eddy", "http://[2606:4700::1111]/x"} {
		if err := (Policy{}).CheckURL(ctx, ok); err != nil {
			t.Errorf("CheckURL(%q) = %v", ok, err)
		}
	}
	if err := (Policy{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1/x"); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}

// TestClientRefusesAtConnect: the dialer checks the address it connects
// to, whatever the URL said at registration.
func TestClientRefusesAtConnect(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}
	}))
	defer srv.Close()

	_, err := Policy{}.Client(5 * time.Second).Get(srv.URL)
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("GET %s = %v, want ErrForbidden", srv.URL, err)
	}
	if hits != 0 {
		t.Fatalf("the server was reached %d times", hits)
	}

	// The same client with AllowPrivate reaches it, so the refusal above is
	// the policy's and not a broken client.
	resp, err := Policy{AllowPrivate: true}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits != 1 {
		t.Fatalf("hits = %d, want 1", hits)
	}

	// A receiver the operator allowed may not redirect to a forbidden
	// address: every connection is checked, not just the first.
	var p Policy
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	p.RegisterFlags(fs)
	if err := fs.Parse([]string{"--webhook-allow-cidrs=127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	_, err = p.Client(5 * time.Second).Get(srv.URL + "/redirect")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("redirect to metadata = %v, want ErrForbidden", err)
	}
	if hits != 2 {
		t.Fatalf("hits = %d, want 2 (the allowed receiver once)", hits)
	}
	var bad Policy
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	bad.RegisterFlagsFor(fs, "oidc", "JWKS URLs")
	if err := fs.Parse([]string{"--oidc-allow-cidrs=nonsense"}); err == nil || !strings.Contains(err.Error(), "--oidc-allow-cidrs") {
		t.Fatalf("a bad CIDR: %v, want an error naming the flag", err)
	}
}
