package broker

import (
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
)

// TestConnLimitsValidate: the flags start from DefaultConnLimits, which
// validate; a bad limit is refused naming its flag; override addresses are
// counted in their plain form.
func TestConnLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string // named in the error; "" means valid
	}{
		{nil, ""},
		{[]string{"--max-preauth-request-bytes=7"}, "--max-preauth-request-bytes"},
		{[]string{"--auth-timeout=0"}, "--auth-timeout"},
		{[]string{"--queued-max-request-bytes=0"}, "--queued-max-request-bytes"},
		{[]string{"--connections-max-idle=-1s"}, "--connections-max-idle"},
		{[]string{"--max-connections-per-ip=0"}, "--max-connections-per-ip"},
		{[]string{"--max-connections=0"}, "--max-connections"},
		{[]string{"--max-connection-creation-rate=0"}, "--max-connection-creation-rate"},
		{[]string{"--max-connections-per-ip-overrides=db.local=5"}, "--max-connections-per-ip-overrides"},
		{[]string{"--max-connections-per-ip-overrides=10.0.0.1=-1"}, "--max-connections-per-ip-overrides"},
		{[]string{"--max-connections-per-ip-overrides=::ffff:10.0.0.1=0,10.0.0.2=5000"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var l ConnLimits
			fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
			l.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if tc.args == nil && !reflect.DeepEqual(l, DefaultConnLimits()) {
				t.Fatalf("flags start from %+v, want DefaultConnLimits %+v", l, DefaultConnLimits())
			}
			err := l.Validate()
			switch {
			case tc.flag == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.flag != "" && (err == nil || !strings.Contains(err.Error(), tc.flag)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.flag)
			}
		})
	}
	l := DefaultConnLimits()
	l.PerIPOverrides = map[string]int{"::ffff:10.0.0.1": 0}
	if err := l.Validate(); err != nil || !maps.Equal(l.PerIPOverrides, map[string]int{"10.0.0.1": 0}) {
		t.Fatalf("overrides %v, err %v; want 10.0.0.1=0", l.PerIPOverrides, err)
	}
}

// TestIPKey: connections are counted per IPv4 address and per IPv6 /64,
// whatever form the address comes in.
func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"10.0.0.1", "10.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not-an-address", "not-an-address"},
	} {
		if got := ipKey(tc.host); got != tc.want {
			t.Errorf("ipKey(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

// TestAdmitPerIPv6Prefix: --max-connections-per-ip counts the addresses of
// one IPv6 /64 together, IPv4 addresses apart; an override named by one
// address of a /64 sets the /64's limit; leaving frees the slot.
func TestAdmitPerIPv6Prefix(t *testing.T) {
	lim := DefaultConnLimits()
	lim.MaxConnectionsPerIP = 2
	lim.PerIPOverrides = map[string]int{"2001:db8:9:9::7": 3}
	if err := lim.Validate(); err != nil {
		t.Fatal(err)
	}
	g := newGuard(lim, slog.New(slog.DiscardHandler), nil, func() float64 { return 0 })
	now := time.Now()
	admit := func(addr string) bool { return g.admit(ipKey(addr), now) }
	for _, step := range []struct {
		addr string
		want bool
	}{
		{"2001:db8:1:2::1", true},
		{"2001:db8:1:2::2", true},
		{"2001:db8:1:2:abcd::3", false}, // third from the same /64
		{"2001:db8:1:3::1", true},       // the next /64 is another client
		{"10.0.0.1", true},
		{"10.0.0.1", true},
		{"10.0.0.1", false},
		{"10.0.0.2", true}, // IPv4 per address
		{"2001:db8:9:9::1", true},
		{"2001:db8:9:9::2", true},
		{"2001:db8:9:9::3", true}, // the override of 3 covers the /64
		{"2001:db8:9:9::4", false},
	} {
		if got := admit(step.addr); got != step.want {
			t.Fatalf("admit(%s) = %v, want %v", step.addr, got, step.want)
		}
	}
	g.leave(ipKey("2001:db8:1:2::2"))
	if !admit("2001:db8:1:2::99") {
		t.Fatal("a slot of the /64 freed by leave was not taken again")
	}
	if got := testutil.ToFloat64(g.refused.WithLabelValues("per_ip")); got != 3 {
		t.Fatalf("refused per address: %v, want 3", got)
	}
}
