package api

// The broker pool and the autoscaler's history, for the operator (the
// console's Pool and Autoscaler pages): read-only views of the brokers'
// session rows and of load_samples, which the autoscaler writes. Tenants
// are refused (403): the pool is shared, and its load is every tenant's.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/control-plane/autoscale"
	"github.com/eddy-streams/eddy/internal/brokerload"
	"github.com/eddy-streams/eddy/internal/store"
)

// Bounds of GET /v1/autoscaler/decisions: by default the last hour; at
// most a week back (the autoscaler keeps 8 days) and 5000 evaluations, the
// newest, so a chart stays a few hundred kilobytes.
const (
	decisionsDefaultSpan  = time.Hour
	decisionsMaxSpan      = 8 * 24 * time.Hour
	decisionsDefaultLimit = 1000
	decisionsMaxLimit     = 5000
)

func brokerOut(b store.BrokerRow) client.Broker {
	out := client.Broker{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, State: client.BrokerLive,
		SessionEpoch: b.SessionEpoch, HeartbeatAt: b.HeartbeatAt, ExpiresAt: b.ExpiresAt,
		Partitions: b.Partitions, PartitionsMoving: b.Moving, CoordinatorSlots: b.Slots}
	switch {
	case !b.Live:
		out.State = client.BrokerExpired
	case b.Draining:
		out.State = client.BrokerDraining
	}
	// An unreadable report counts as no load, as it does for the autoscaler.
	if r, err := brokerload.Parse(b.Load); err == nil {
		out.Load = client.BrokerLoad{BytesInPerSec: r.BytesIn, BytesOutPerSec: r.BytesOut, RequestsPerSec: r.Requests,
			Connections: r.Connections, CPUCoresUsed: r.CPUUsed, CPUCores: r.CPUCores, MemoryBytes: r.MemoryBytes}
		if !r.At.IsZero() {
			at := r.At
			out.Load.ReportedAt = &at
		}
	}
	return out
}

func (s *Server) listBrokers(c echo.Context) error {
	rows, err := s.st.Brokers(c.Request().Context())
	if err != nil {
		return err
	}
	out := client.BrokerList{Items: make([]client.Broker, 0, len(rows))}
	for _, b := range rows {
		out.Items = append(out.Items, brokerOut(b))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) autoscalerDecisions(c echo.Context) error {
	now := time.Now()
	since, limit := now.Add(-decisionsDefaultSpan), decisionsDefaultLimit
	var fe fieldErrors
	if v := c.QueryParam("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		switch {
		case err != nil:
			fe.add("since", "must be an RFC 3339 time")
		case t.Before(now.Add(-decisionsMaxSpan)):
			fe.add("since", "must be within the last %s (the autoscaler keeps 8 days)", "192h")
		default:
			since = t
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > decisionsMaxLimit {
			fe.add("limit", "must be an integer from 1 to %d", decisionsMaxLimit)
		}
		limit = n
	}
	if err := fe.err(); err != nil {
		return err
	}
	rows, err := s.st.RecentLoadSamples(c.Request().Context(), since, limit)
	if err != nil {
		return err
	}
	out := client.AutoscalerHistory{Since: since.UTC(), Items: make([]client.AutoscalerEvaluation, 0, len(rows))}
	for _, row := range rows {
		var ev autoscale.Evaluation
		if err := json.Unmarshal(row.Sample, &ev); err != nil {
			continue // an unreadable row is a gap, as it is to the autoscaler
		}
		item := client.AutoscalerEvaluation{At: row.At.UTC(), Brokers: ev.Brokers, BytesInPerSec: ev.BytesIn,
			BytesOutPerSec: ev.BytesOut, CPUCoresUsed: ev.CPU, Connections: ev.Connections, Demand: ev.Demand, Target: ev.Target}
		if d := ev.Decision; d != nil {
			item.Decision = &client.AutoscalerDecision{Action: d.Action, From: d.From, To: d.To, Reason: d.Reason,
				Utilisation: d.Utilisation, Predicted: d.Predicted}
		}
		out.Items = append(out.Items, item)
	}
	return c.JSON(http.StatusOK, out)
}
