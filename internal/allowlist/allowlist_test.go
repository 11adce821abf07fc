package allowlist

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse([]string{"10.1.2.3/8", "127.0.0.1", "::1", "10.0.0.0/8", "::ffff:192.168.1.0/120"})
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "192.168.1.0/24", "::1/128"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Parse = %v, %v; want %v", got, err, want)
	}
	for _, bad := range [][]string{{"example.com"}, {"10.0.0.0/33"}, {""}, {"fe80::1%eth0"}, make([]string, MaxEntries+1)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", strings.Join(bad, ","))
		}
	}
}

func TestAllows(t *testing.T) {
	list, _ := Parse([]string{"127.0.0.1", "10.0.0.0/8"})
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": false, "10.200.0.1": true, "::ffff:10.0.0.1": true,
		"11.0.0.1": false, "not-an-ip": false, "::1": false,
	} {
		if got := Allows(list, host); got != want {
			t.Errorf("Allows(%s) = %v, want %v", host, got, want)
		}
	}
	if !Allows(nil, "203.0.113.9") {
		t.Error("an empty list refused")
	}
}
