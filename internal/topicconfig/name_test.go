package topicconfig

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders.v1_x-y", true}, {strings.Repeat("a", 249), true},
		{"", false}, {".", false}, {"..", false}, {strings.Repeat("a", 250), false},
		{"a/b", false}, {"ü", false}, {"a b", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
