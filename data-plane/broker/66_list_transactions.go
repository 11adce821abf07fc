package broker

import (
	"regexp"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListTransactions (API key 66).
// Versions: 0-2.
//
// Each broker lists the transactional ids of the connection's cluster
// whose coordinator slot it leads (clients ask every broker and merge),
// with their states read as DescribeTransactions reads them. Filters:
// states (names it does not know are echoed in UnknownStateFilters),
// producer ids, v1 only transactions started longer than
// DurationFilterMillis ago (ids that never started one pass, as in Kafka), v2 ids matching TransactionalIDPattern (a regular
// expression, RE2 syntax: INVALID_REGULAR_EXPRESSION if it does not
// parse).
//
// Authorization: ids the principal may not DESCRIBE are left out.

func handleListTransactions(s *Server, c *conn, req *kmsg.ListTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, f := range req.StateFilters {
		if !slices.Contains(store.TxnStates, store.TxnState(f)) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
			continue
		}
		states[f] = true
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp // only unknown states: nothing matches
	}
	led := s.ledSlots()
	slots := make([]int32, 0, len(led))
	for sl := range led {
		slots = append(slots, sl)
	}
	ctx, cancel := c.txnCtx()
	defer cancel()
	txns, err := s.store.Txns(ctx, c.cluster, slots)
	if err != nil {
		resp.ErrorCode = s.txnCode(err, kerr.ProducerFenced.Code)
		return resp
	}
	for _, t := range txns {
		switch {
		case len(states) > 0 && !states[string(t.State)],
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.ProducerID),
			req.Version >= 1 && req.DurationFilterMillis >= 0 && !t.StartedAt.IsZero() &&
				time.Since(t.StartedAt) < time.Duration(req.DurationFilterMillis)*time.Millisecond,
			pattern != nil && !pattern.MatchString(t.TransactionalID),
			!c.sees(acl.TransactionalID, t.TransactionalID):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = t.TransactionalID, t.ProducerID, string(t.State)
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}
