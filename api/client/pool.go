package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Broker states in Broker.State.
const (
	BrokerLive     = "live"
	BrokerDraining = "draining" // live, being emptied before it is stopped
	BrokerExpired  = "expired"  // its session ended (stopped, or lost)
)

// Broker is one broker of the pool as the operator sees it (GET
// /v1/brokers, operator only).
type Broker struct {
	ID           int32  `json:"id"`
	Host         string `json:"host"`
	Port         int32  `json:"port"`
	Rack         string `json:"rack,omitempty"` // its zone (broker.rack)
	State        string `json:"state"`
	SessionEpoch int64  `json:"session_epoch"`
	// HeartbeatAt is its last heartbeat; ExpiresAt when its session ends
	// without another.
	HeartbeatAt time.Time `json:"heartbeat_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Partitions and CoordinatorSlots are what it leads; PartitionsMoving
	// of those partitions have a graceful move pending.
	Partitions       int        `json:"partitions"`
	PartitionsMoving int        `json:"partitions_moving"`
	CoordinatorSlots int        `json:"coordinator_slots"`
	Load             BrokerLoad `json:"load"`
}

// BrokerLoad is a broker's last load report, which the autoscaler and
// the rebalancer read: rates over the interval before ReportedAt (zero
// before its first report).
type BrokerLoad struct {
	ReportedAt     *time.Time `json:"reported_at,omitempty"`
	BytesInPerSec  float64    `json:"bytes_in_per_sec"`
	BytesOutPerSec float64    `json:"bytes_out_per_sec"`
	RequestsPerSec float64    `json:"requests_per_sec"`
	Connections    int        `json:"connections"`
	CPUCoresUsed   float64    `json:"cpu_cores_used"`
	CPUCores       int        `json:"cpu_cores"`
	MemoryBytes    uint64     `json:"memory_bytes"`
}

// BrokerList is GET /v1/brokers: every broker, by id.
type BrokerList struct {
	Items []Broker `json:"items"`
}

// AutoscalerEvaluation is one evaluation of the autoscaler: the pool's
// load, that load in brokers' worth of capacity (Demand) and the
// utilisation aimed at (Target), and what it decided.
type AutoscalerEvaluation struct {
	At             time.Time           `json:"at"`
	Brokers        int                 `json:"brokers"`
	BytesInPerSec  float64             `json:"bytes_in_per_sec"`
	BytesOutPerSec float64             `json:"bytes_out_per_sec"`
	CPUCoresUsed   float64             `json:"cpu_cores_used"`
	Connections    int                 `json:"connections"`
	Demand         float64             `json:"demand"`
	Target         float64             `json:"target,omitempty"`
	Decision       *AutoscalerDecision `json:"decision,omitempty"`
}

// AutoscalerDecision is what the autoscaler decided: hold, scale-out or
// scale-in, from how many brokers to how many, and why.
type AutoscalerDecision struct {
	Action      string  `json:"action"`
	From        int     `json:"from"`
	To          int     `json:"to"`
	Reason      string  `json:"reason"`
	Utilisation float64 `json:"utilisation"`
	Predicted   float64 `json:"predicted"`
}

// AutoscalerHistory is GET /v1/autoscaler/decisions: the evaluations
// after Since, oldest first.
type AutoscalerHistory struct {
	Since time.Time              `json:"since"`
	Items []AutoscalerEvaluation `json:"items"`
}

// ListBrokers lists the broker pool (operator only).
func (c *Client) ListBrokers(ctx context.Context) (BrokerList, error) {
	var out BrokerList
	_, err := c.do(ctx, http.MethodGet, "/v1/brokers", nil, &out)
	return out, err
}

// AutoscalerDecisions returns the autoscaler's evaluations after since
// (zero: the last hour), at most limit of them, the newest (0: the
// server's default), oldest first (operator only).
func (c *Client) AutoscalerDecisions(ctx context.Context, since time.Time, limit int) (AutoscalerHistory, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/autoscaler/decisions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out AutoscalerHistory
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
