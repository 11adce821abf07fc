package laghistory

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: the defaults validate, and each bad value names its flag.
func TestValidate(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for flag, change := range map[string]func(*Config){
		"--lag-sample-interval":        func(c *Config) { c.Interval = time.Millisecond },
		"--lag-retention":              func(c *Config) { c.Retention = c.Interval / 2 },
		"--lag-max-groups-per-cluster": func(c *Config) { c.MaxGroupsPerCluster = 0 },
	} {
		c := DefaultConfig()
		change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s: %v", flag, err)
		}
	}
}
