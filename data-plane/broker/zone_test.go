package broker

import (
	"strings"
	"testing"
)

func TestZoneFromClientID(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"", ""},
		{"orders-app", ""},
		{"eddy_az=zone-a", "zone-a"},
		{"orders-app,eddy_az=us-east-1a", "us-east-1a"},
		{"ws_az=eu-west-1b;app=orders", "eu-west-1b"},
		{"app=orders ; eddy_az = zone-c", ""}, // spaces inside a field are not trimmed around '='
		{"app=orders ; eddy_az=zone-c ", "zone-c"},
		{"ws_az=zone-b,eddy_az=zone-a", "zone-a"}, // eddy_az wins
		{"eddy_az=zone-a,eddy_az=zone-b", "zone-a"},
		{"eddy_az=", ""},
		{"eddy_az=bad zone", ""},
		{"eddy_az=" + strings.Repeat("a", maxZoneLen+1), ""},
		{"eddy_az=" + strings.Repeat("a", maxZoneLen), strings.Repeat("a", maxZoneLen)},
		{"my_eddy_az=zone-a", ""},
		{"EDDY_AZ=zone-a", ""},
		{"eddy_az=zone=a", ""},
		{"eddy_az=bad\x00,ws_az=zone-b", "zone-b"},
	} {
		if got := zoneFromClientID(c.id); got != c.want {
			t.Errorf("zoneFromClientID(%q) = %q, want %q", c.id, got, c.want)
		}
	}
}

func TestConnZone(t *testing.T) {
	c := &conn{}
	c.setClientID("app,eddy_az=zone-a")
	if z := c.zone(); z != "zone-a" {
		t.Fatalf("zone from client.id = %q", z)
	}
	c.setRack("zone-b") // a Fetch's client.rack wins
	if z := c.zone(); z != "zone-b" {
		t.Fatalf("zone with client.rack = %q", z)
	}
	c.setRack("")
	c.setClientID("app")
	if z := c.zone(); z != "" {
		t.Fatalf("zone after the hint went = %q", z)
	}
}

// FuzzZoneFromClientID: no client.id makes the parser panic, and a zone
// it returns is always a plausible one found in the input.
func FuzzZoneFromClientID(f *testing.F) {
	for _, s := range []string{"", "eddy_az=zone-a", "a,ws_az=b;c=d", "eddy_az=,ws_az=x", ";;,=,_az="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		z := zoneFromClientID(id)
		if z == "" {
			return
		}
		if validZone(z) != z || !strings.Contains(id, "_az="+z) {
			t.Fatalf("zoneFromClientID(%q) = %q", id, z)
		}
	})
}
