package chaos

import (
	"strings"
	"testing"
	"time"
)

// The report's totals row counts violations, not kinds of violation.
func TestReportViolationsTotal(t *testing.T) {
	now := time.Now()
	r := &Run{Start: now, End: now, Timeline: &Timeline{}, History: NewHistory(),
		Result: Result{Counts: map[string]int{KindDuplicate: 3, KindRedelivered: 2}}}
	if md := r.markdown(); !strings.Contains(md, "| violations | 5 |") {
		t.Fatalf("want a violations row of 5:\n%s", md)
	}
}
