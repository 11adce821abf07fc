package broker

import (
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
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

func TestPreferredReplica(t *testing.T) {
	v := newView(&store.Metadata{Brokers: []store.Broker{
		{ID: 1, Rack: "zone-a"}, {ID: 2, Rack: "zone-b"}, {ID: 3, Rack: "zone-c"},
		{ID: 4, Rack: "zone-b"}, {ID: 5, Rack: "zone-c", Draining: true}, {ID: 6},
	}})
	s := &Server{cfg: Config{ID: 1, Rack: "zone-a"}}
	for _, c := range []struct {
		zone string
		part int64
		want int32
	}{
		{"", 7, -1},       // no zone: the leader serves
		{"zone-a", 7, -1}, // the leader's own zone
		{"zone-b", 6, 2},  // zone-b's serving brokers are 2 and 4, by partition id
		{"zone-b", 7, 4},
		{"zone-c", 7, 3},  // 5 is draining
		{"zone-d", 7, -1}, // no broker there
	} {
		if got := s.preferredReplica(v, &store.Partition{ID: c.part}, c.zone); got != c.want {
			t.Errorf("client in %q, partition %d: preferred replica %d, want %d", c.zone, c.part, got, c.want)
		}
	}
	s.cfg.Rack = "" // a broker without a zone sends nobody elsewhere
	if got := s.preferredReplica(v, &store.Partition{ID: 7}, "zone-b"); got != -1 {
		t.Errorf("broker without --rack: preferred replica %d, want -1", got)
	}
	if s.servesReplicas(&conn{rackZone: "zone-b"}) {
		t.Error("a broker without --rack serves partitions it does not lead")
	}
	s.cfg.Rack = "zone-b"
	if s.servesReplicas(&conn{}) || !s.servesReplicas(&conn{idZone: "zone-b"}) {
		t.Error("replica reads: only for clients that say their zone")
	}
	for _, c := range []struct {
		zone, want string
	}{{"", zoneUnkn}, {"zone-b", sameZone}, {"zone-a", crossZone}} {
		if got := s.locality(c.zone); got != c.want {
			t.Errorf("locality of %q on zone-b: %s, want %s", c.zone, got, c.want)
		}
	}
}

func TestReplicaEpochCheck(t *testing.T) {
	pm := &store.Partition{LeaderEpoch: 5}
	for _, c := range []struct {
		epoch int32
		want  int16
	}{{-1, 0}, {5, 0}, {4, kerr.FencedLeaderEpoch.Code}, {6, kerr.UnknownLeaderEpoch.Code}} {
		if got := replicaEpochCheck(pm, c.epoch); got != c.want {
			t.Errorf("client epoch %d against 5: %d, want %d", c.epoch, got, c.want)
		}
	}
}
