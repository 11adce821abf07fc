package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type metrics struct {
	bytesIn, bytesOut prometheus.Counter
	connections       prometheus.Gauge
	authFailures      *prometheus.CounterVec
	authzDenials      *prometheus.CounterVec
	requests          *prometheus.CounterVec
	latency           *prometheus.HistogramVec
	handOffs          *prometheus.CounterVec
	reloads           prometheus.Counter
	zoneBytes         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_broker_received_bytes_total", Help: "Bytes received on the Kafka listener (request frames)."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_broker_sent_bytes_total", Help: "Bytes sent on the Kafka listener (response frames)."}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_broker_connections", Help: "Open client connections."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_auth_failures_total", Help: "Failed SASL authentications by mechanism and reason (credentials, malformed, mechanism, cluster, internal)."},
			[]string{"mechanism", "reason"}),
		authzDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_authz_denials_total", Help: "Requests (or parts of requests) refused by authorization, by resource type and operation."},
			[]string{"resource_type", "operation"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_requests_total", Help: "Kafka requests handled, by API and outcome."},
			[]string{"api", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eddy_broker_request_seconds", Help: "Kafka request latency by API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"api"}),
		handOffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_partition_handoffs_total", Help: "Graceful partition moves away from this broker, by outcome."},
			[]string{"outcome"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_broker_metadata_reloads_total", Help: "Re-reads of the whole routing view from Postgres."}),
		zoneBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_broker_zone_bytes_total",
			Help: "Record bytes produced to and fetched from this broker, by virtual cluster, direction (produce, fetch) and whether the client is in this broker's zone (locality: same_zone, cross_zone, unknown when the client or the broker names no zone)."},
			[]string{"virtual_cluster", "direction", "locality"}),
	}
	if reg != nil {
		reg.MustRegister(m.bytesIn, m.bytesOut, m.connections, m.authFailures, m.authzDenials, m.requests, m.latency, m.handOffs, m.reloads, m.zoneBytes)
	}
	return m
}

func (m *metrics) observe(key int16, start time.Time, err error) {
	name := kmsg.NameForKey(key)
	outcome := "ok"
	if err != nil {
		outcome = "closed"
	}
	m.requests.WithLabelValues(name, outcome).Inc()
	m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
}
