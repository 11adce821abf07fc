package leader

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Producer state expiry (Kafka's producer.id.expiration.ms, KIP-854). Each
// led partition remembers, per idempotent producer, its epoch and last
// batches; without expiry that map, and the producer_states rows behind
// it, grow with every producer that ever wrote, and a new leader loads
// them all. A producer whose last write is older than
// Config.ProducerIDExpiration is dropped from memory by RunProducerExpiry
// and from Postgres by the same loop (every broker runs it; the delete is
// idempotent), and LoadPartition leaves such rows out. Deviation: Kafka
// dates a producer by its batches' timestamps, which clients set; Eddy
// uses the broker's clock at the write.

type producerMetrics struct {
	live    prometheus.GaugeFunc
	expired prometheus.Counter
}

func (m *Manager) initProducerMetrics(reg prometheus.Registerer) {
	m.prodMet = producerMetrics{
		live: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_producer_states", Help: "Idempotent producers remembered across the partitions this broker leads."},
			func() float64 { return float64(m.producerCount()) }),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_producer_states_expired_total", Help: "Idempotent producer states dropped from memory after --producer-id-expiration without a write."}),
	}
	if reg != nil {
		reg.MustRegister(m.prodMet.live, m.prodMet.expired)
	}
}

func (m *Manager) producerCount() int {
	n := 0
	for _, p := range m.ledPartitions() {
		p.mu.Lock()
		n += len(p.producers)
		p.mu.Unlock()
	}
	return n
}

func (m *Manager) ledPartitions() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ps := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		ps = append(ps, p)
	}
	return ps
}

// RunProducerExpiry expires producer state every tenth of the expiration
// (between 100 ms and Kafka's 10-minute check interval) until ctx ends.
func (m *Manager) RunProducerExpiry(ctx context.Context) {
	t := time.NewTicker(min(max(m.cfg.ProducerIDExpiration/10, 100*time.Millisecond), 10*time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.ExpireProducers(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Warn("producer state expiry failed", "err", err)
		}
	}
}

// ExpireProducers drops the producers that have not written since
// now minus the expiration, from the led partitions and from Postgres.
func (m *Manager) ExpireProducers(ctx context.Context, now time.Time) error {
	before := now.Add(-m.cfg.ProducerIDExpiration)
	dropped := 0
	for _, p := range m.ledPartitions() {
		dropped += p.expireProducers(before)
	}
	m.prodMet.expired.Add(float64(dropped))
	n, err := m.store.ExpireProducerStates(ctx, before)
	if dropped > 0 || n > 0 {
		m.log.Debug("expired producer state", "in_memory", dropped, "stored", n)
	}
	return err
}

// expireProducers drops the producers whose last write is before before;
// those with state not yet flushed stay until it is.
func (p *Partition) expireProducers(before time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for id, pr := range p.producers {
		// One with an open transaction stays, as in Kafka: its first
		// offset holds the last stable offset until the marker.
		if !pr.dirty && pr.last.Before(before) && pr.txnFirst < 0 {
			delete(p.producers, id)
			n++
		}
	}
	return n
}
