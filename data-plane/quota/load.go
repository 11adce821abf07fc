package quota

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eddy-streams/eddy/internal/brokerload"
)

// tenant is one virtual cluster's counters and quota state on this broker.
// Counters are cumulative and only ever grow.
type tenant struct {
	name                        string
	bytesIn, bytesOut, requests atomic.Int64
	conns                       atomic.Int64
	quota                       tenantQuota
	// throttled sums the throttle time handed out (nanoseconds) and
	// lastThrottled is when the last was (Unix nanoseconds; 0: never).
	throttled, lastThrottled atomic.Int64
}

// Meter holds every tenant seen and the previous report's counters.
type Meter struct {
	mu      sync.RWMutex
	tenants map[string]*tenant

	parts sync.Map // partition id → *atomic.Int64: record bytes produced

	repMu     sync.Mutex // one report at a time
	lastParts map[int64]int64
	lastAt    time.Time
	lastCPU   time.Duration
	lastSeen  map[string]counts
	lastAll   counts
}

type counts struct{ in, out, reqs, throttled int64 }

// NewMeter returns a Meter whose first report covers the time since now.
func NewMeter() *Meter {
	return &Meter{tenants: map[string]*tenant{}, lastAt: time.Now(), lastCPU: cpuTime(), lastSeen: map[string]counts{}}
}

// tenant returns name's counters, creating them on first use.
func (m *Meter) tenant(name string) *tenant {
	m.mu.RLock()
	t := m.tenants[name]
	m.mu.RUnlock()
	if t != nil {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t = m.tenants[name]; t == nil {
		t = &tenant{name: name}
		m.tenants[name] = t
	}
	return t
}

func (m *Meter) all() []*tenant {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		out = append(out, t)
	}
	return out
}

// Conn is a connection's link to its tenant's counters and its quota
// state; the zero value is a connection of no tenant yet. The tenant
// changes at most at authentication; the writer goroutine reads it too.
type Conn struct {
	t atomic.Pointer[tenant]
	// Quota state, used by the reader goroutine only.
	mutedUntil time.Time
	admitted   bool // passed the connection quota once
}

// Produced counts n record bytes produced to partition id.
func (m *Meter) Produced(id int64, n int) {
	c, ok := m.parts.Load(id)
	if !ok {
		c, _ = m.parts.LoadOrStore(id, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(int64(n))
}

// Request is called by the connection's reader for every request frame
// of n bytes (size prefix included), with the cluster the connection acts
// in now ("" before authentication).
func (c *Conn) Request(m *Meter, cluster string, n int) {
	t := c.t.Load()
	if t == nil || t.name != cluster {
		if t != nil {
			t.conns.Add(-1)
		}
		t = nil
		if cluster != "" {
			t = m.tenant(cluster)
			t.conns.Add(1)
		}
		c.t.Store(t)
	}
	if t != nil {
		t.bytesIn.Add(int64(n))
		t.requests.Add(1)
	}
}

// Response is called by the connection's writer for every response frame
// sent.
func (c *Conn) Response(n int) {
	if t := c.t.Load(); t != nil {
		t.bytesOut.Add(int64(n))
	}
}

// Close is called once when the connection closes.
func (c *Conn) Close() {
	if t := c.t.Swap(nil); t != nil {
		t.conns.Add(-1)
	}
}

// Report computes rates since the previous report. led is the partitions
// the broker leads now, slots the coordinator slots.
func (m *Meter) Report(led map[int64]bool, slots int) brokerload.Report {
	partitions := len(led)
	m.repMu.Lock()
	defer m.repMu.Unlock()
	now, cpu := time.Now(), cpuTime()
	secs := now.Sub(m.lastAt).Seconds()
	r := brokerload.Report{
		At: now.UTC().Truncate(time.Millisecond), Interval: secs,
		CPUCores: runtime.GOMAXPROCS(0), MemoryBytes: memoryBytes(),
		Partitions: partitions, Slots: slots,
		Clusters: map[string]brokerload.Rates{},
	}
	if secs <= 0 {
		secs = 1e-9
	}
	r.CPUUsed = (cpu - m.lastCPU).Seconds() / secs
	seen := make(map[string]counts, len(m.lastSeen))
	var all counts
	for _, t := range m.all() {
		c := counts{t.bytesIn.Load(), t.bytesOut.Load(), t.requests.Load(), t.throttled.Load()}
		p := m.lastSeen[t.name]
		rates := brokerload.Rates{
			BytesIn:     float64(c.in-p.in) / secs,
			BytesOut:    float64(c.out-p.out) / secs,
			Requests:    float64(c.reqs-p.reqs) / secs,
			Connections: int(t.conns.Load()),
			Throttle:    time.Duration(c.throttled-p.throttled).Seconds() / secs,
		}
		if last := t.lastThrottled.Load(); last != 0 && now.Sub(time.Unix(0, last)) < brokerload.RecentThrottle {
			rates.LastThrottledAt = time.Unix(0, last).UTC()
		}
		seen[t.name] = c
		all.in, all.out, all.reqs, all.throttled = all.in+c.in, all.out+c.out, all.reqs+c.reqs, all.throttled+c.throttled
		if rates != (brokerload.Rates{}) {
			r.Clusters[t.name] = rates
		}
		r.Connections += rates.Connections
	}
	r.PartitionBytesIn = map[string]float64{}
	parts := map[int64]int64{}
	m.parts.Range(func(k, v any) bool {
		id, n := k.(int64), v.(*atomic.Int64).Load()
		if led != nil && !led[id] {
			m.parts.Delete(id) // moved away: forget it
			return true
		}
		parts[id] = n
		if d := n - m.lastParts[id]; d > 0 {
			r.PartitionBytesIn[strconv.FormatInt(id, 10)] = float64(d) / secs
		}
		return true
	})
	m.lastParts = parts
	r.BytesIn = float64(all.in-m.lastAll.in) / secs
	r.BytesOut = float64(all.out-m.lastAll.out) / secs
	r.Requests = float64(all.reqs-m.lastAll.reqs) / secs
	m.lastAt, m.lastCPU, m.lastSeen, m.lastAll = now, cpu, seen, all
	return r
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memoryBytes is what the Go runtime holds from the OS.
func memoryBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
