// Package brokerload is the load report a broker writes into its session
// row with every heartbeat (brokers.load, JSON) and that the control plane
// (autoscaler, rebalancer) and the other brokers (quota shares) read.
//
// Rates are averages over the interval since the broker's previous report,
// so a reader needs no history of its own. Example:
//
//	{"at":"2025-01-02T03:04:05Z","interval_seconds":1,
//	 "bytes_in_per_sec":1048576,"bytes_out_per_sec":2097152,
//	 "requests_per_sec":120,"connections":7,
//	 "cpu_cores_used":0.4,"cpu_cores":2,"memory_bytes":73400320,
//	 "partitions":12,"slots":21,
//	 "clusters":{"vc-a":{"bytes_in_per_sec":1048576, ...}}}
//
// A report of an older broker (cumulative "bytes_in"/"bytes_out" strings)
// or an empty one parses as zero load.
package brokerload

import (
	"encoding/json"
	"fmt"
	"time"
)

// Rates is load over an interval: bytes of request frames received and
// response frames sent on the Kafka listener, requests handled, and the
// connections open at the end of the interval.
type Rates struct {
	BytesIn     float64 `json:"bytes_in_per_sec"`
	BytesOut    float64 `json:"bytes_out_per_sec"`
	Requests    float64 `json:"requests_per_sec"`
	Connections int     `json:"connections"`
	// Throttle is the throttle time the broker's quotas handed to the
	// cluster's clients per second of the interval (data-plane/quota), and
	// LastThrottledAt when it last throttled one, if within
	// RecentThrottle: the control plane shows tenants whether they were
	// throttled recently (GET /v1/clusters/{id}/quota-usage).
	Throttle        float64   `json:"throttle_seconds_per_sec,omitempty"`
	LastThrottledAt time.Time `json:"last_throttled_at,omitzero"`
}

// RecentThrottle is how long a broker keeps reporting a cluster's last
// throttle: a broker that restarts forgets it.
const RecentThrottle = time.Hour

// Report is one broker's load.
type Report struct {
	At       time.Time `json:"at"`
	Interval float64   `json:"interval_seconds"`
	Rates
	// CPUUsed is the CPU time the broker process used per second of the
	// interval (1.0: one core busy); CPUCores is how many it may use.
	CPUUsed  float64 `json:"cpu_cores_used"`
	CPUCores int     `json:"cpu_cores"`
	// MemoryBytes is the Go runtime's memory obtained from the OS, minus
	// what it has returned.
	MemoryBytes uint64 `json:"memory_bytes"`
	// Partitions and Slots are what the broker leads.
	Partitions int `json:"partitions"`
	Slots      int `json:"slots"`
	// Clusters breaks Rates down by virtual cluster.
	Clusters map[string]Rates `json:"clusters,omitempty"`
	// PartitionBytesIn is the record bytes produced per second to each
	// partition led here (by partition id, decimal), for the rebalancer.
	PartitionBytesIn map[string]float64 `json:"partition_bytes_in,omitempty"`
}

// CPUFraction is CPUUsed/CPUCores (0 when unknown).
func (r Report) CPUFraction() float64 {
	if r.CPUCores <= 0 {
		return 0
	}
	return r.CPUUsed / float64(r.CPUCores)
}

// Marshal encodes r.
func (r Report) Marshal() []byte {
	b, _ := json.Marshal(r) // cannot fail: no maps with non-string keys, no NaN
	return b
}

// Parse decodes a report; an empty document is zero load.
func Parse(b []byte) (Report, error) {
	var r Report
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Report{}, fmt.Errorf("brokerload: %w", err)
	}
	return r, nil
}
