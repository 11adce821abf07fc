package main

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestOrdinalID(t *testing.T) {
	for _, tc := range []struct {
		host string
		id   int32
		ok   bool
	}{
		{"eddy-broker-0", 1, true},
		{"eddy-broker-11", 12, true},
		{"eddy-broker-2.eddy-broker-headless.ns.svc.cluster.local", 3, true},
		{"broker", 0, false},
		{"eddy-broker-", 0, false},
		{"eddy-broker-x", 0, false},
		{"eddy-broker-2147483647", 0, false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			id, err := ordinalID(tc.host)
			if (err == nil) != tc.ok || id != tc.id {
				t.Errorf("ordinalID(%q) = %d, %v; want %d (ok=%v)", tc.host, id, err, tc.id, tc.ok)
			}
		})
	}
}

// TestIDFromHostname: --id-from-hostname replaces --id, and the parts get
// the derived id too.
func TestIDFromHostname(t *testing.T) {
	var c brokerConfig
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--id=7", "--id-from-hostname", "--anonymous-cluster=vc-dev", "--database-url=postgres://x/y", "--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	c.hostname = func() (string, error) { return "eddy-broker-4", nil }
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ID != 5 || c.Leader.BrokerID != 5 {
		t.Errorf("id %d, leader's %d; want 5 from eddy-broker-4", c.ID, c.Leader.BrokerID)
	}
	c.hostname = func() (string, error) { return "my-laptop", nil }
	if err := c.Validate(); err == nil {
		t.Error("a hostname without an ordinal was accepted")
	}
}
