package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseScaleRuns(t *testing.T) {
	got, err := parseScaleRuns([]string{"100", "10000/1000"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Partitions != 100 || got[0].Clusters != 1 || got[1].Partitions != 10000 || got[1].Clusters != 1000 || got[1].Quiet != 5*time.Second {
		t.Errorf("parseScaleRuns: %+v", got)
	}
	for _, bad := range []string{"", "x", "10/", "10/a", "10/0", "1/2", "-5"} {
		if _, err := parseScaleRuns([]string{bad}, time.Second); err == nil || !strings.Contains(err.Error(), "--scale-runs") {
			t.Errorf("parseScaleRuns(%q): %v, want an error naming --scale-runs", bad, err)
		}
	}
}
