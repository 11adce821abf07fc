package limits

import "sync/atomic"

// Overrides holds every cluster's limits for the broker: a snapshot
// replaced as a whole (Set) and read without locks, so the getters are
// safe to call from any goroutine, on every request. A cluster not in the
// snapshot (created since it was taken) has zero limits: unlimited until
// the next Set.
type Overrides struct {
	m atomic.Pointer[map[string]Limits]
}

// NewOverrides returns an Overrides that knows no cluster yet.
func NewOverrides() *Overrides {
	o := &Overrides{}
	o.Set(nil)
	return o
}

// Set replaces the snapshot with byCluster (cluster id → limits), which
// the caller must not change afterwards.
func (o *Overrides) Set(byCluster map[string]Limits) {
	if byCluster == nil {
		byCluster = map[string]Limits{}
	}
	o.m.Store(&byCluster)
}

// Clusters lists the clusters of the snapshot, in no particular order.
func (o *Overrides) Clusters() []string {
	m := *o.m.Load()
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

// Of returns one cluster's limits.
func (o *Overrides) Of(cluster string) Limits { return (*o.m.Load())[cluster] }

// ProduceBytesPerSec is the cluster's produce rate across the pool.
func (o *Overrides) ProduceBytesPerSec(cluster string) float64 {
	return float64(o.Of(cluster).IngressMBps) * 1e6
}

// FetchBytesPerSec is the cluster's fetch rate across the pool.
func (o *Overrides) FetchBytesPerSec(cluster string) float64 {
	return float64(o.Of(cluster).EgressMBps) * 1e6
}

// RequestsPerSec is the cluster's request rate across the pool.
func (o *Overrides) RequestsPerSec(cluster string) float64 {
	return float64(o.Of(cluster).MaxRequestsPerSec)
}

// Connections is how many connections the cluster may hold open across
// the pool.
func (o *Overrides) Connections(cluster string) int64 { return int64(o.Of(cluster).MaxConnections) }

// StorageBytes is how many committed bytes the cluster may store.
func (o *Overrides) StorageBytes(cluster string) int64 { return o.Of(cluster).MaxStorageGB * 1e9 }

// Groups is how many consumer groups the cluster may have (0: no limit
// known yet).
func (o *Overrides) Groups(cluster string) int64 { return int64(o.Of(cluster).MaxGroups) }

// ProducerIDs is the cluster's producer-id budget across the pool: ids per
// second once burst ids are spent. A cluster not in the snapshot gets the
// defaults' budget rather than none: an unlimited stream of producer ids
// is what the budget exists to prevent.
func (o *Overrides) ProducerIDs(cluster string) (perSecond float64, burst int) {
	l := o.Of(cluster)
	if l.ProducerIDsPerHour == 0 || l.ProducerIDBurst == 0 {
		d := Defaults()
		l.ProducerIDsPerHour, l.ProducerIDBurst = d.ProducerIDsPerHour, d.ProducerIDBurst
	}
	return float64(l.ProducerIDsPerHour) / 3600, int(l.ProducerIDBurst)
}
