package chaos

import (
	"maps"
	"sync"
	"time"
)

// Ack is a record the cluster acknowledged to a producer.
type Ack struct {
	Value     string // "<acks>-<producer>-<seq>" (parseValue)
	Partition int32
	Offset    int64
	AcksAll   bool // acks=all and idempotent; else acks=1
	Sent, At  time.Time
}

// Read is a record a consumer was handed.
type Read struct {
	Reader    string // a group member or a tailing reader
	Group     bool   // Reader is a member of the workload's consumer group
	Partition int32
	Offset    int64
	Value     string
	HWM       int64 // the high watermark the fetch answer carried
	At        time.Time
}

// Commit is an offset commit the group coordinator confirmed: the group's
// next record on Partition is at Offset.
type Commit struct {
	Member    string
	Partition int32
	Offset    int64
	At        time.Time
}

// Record is one record of the log as read back at the end of a run.
type Record struct {
	Offset int64
	Value  string
}

// History is what the workload saw, recorded as it happened and checked
// afterwards. Its methods are safe for concurrent use.
type History struct {
	mu   sync.Mutex
	acks []Ack
	// Produce attempts that failed for good, acks=all and acks=1.
	failedAll, failedOne int
	why                  map[string]int // their errors
	reads                []Read
	commits              []Commit
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{why: map[string]int{}} }

func (h *History) ack(a Ack) {
	h.mu.Lock()
	h.acks = append(h.acks, a)
	h.mu.Unlock()
}

func (h *History) fail(acksAll bool, err error) {
	h.mu.Lock()
	if acksAll {
		h.failedAll++
	} else {
		h.failedOne++
	}
	h.why[err.Error()]++
	h.mu.Unlock()
}

func (h *History) read(rs []Read) {
	h.mu.Lock()
	h.reads = append(h.reads, rs...)
	h.mu.Unlock()
}

func (h *History) commit(cs []Commit) {
	h.mu.Lock()
	h.commits = append(h.commits, cs...)
	h.mu.Unlock()
}

// Acks returns every acknowledgement so far.
func (h *History) Acks() []Ack {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Ack(nil), h.acks...)
}

// Reads returns every record handed to a consumer so far.
func (h *History) Reads() []Read {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Read(nil), h.reads...)
}

// Commits returns every confirmed commit so far.
func (h *History) Commits() []Commit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Commit(nil), h.commits...)
}

// Failed returns how many produce attempts failed for good, with acks=all
// and with acks=1; they were never acknowledged.
func (h *History) Failed() (acksAll, acksOne int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failedAll, h.failedOne
}

// FailErrors returns why produce attempts failed for good: error → count.
func (h *History) FailErrors() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.why)
}
