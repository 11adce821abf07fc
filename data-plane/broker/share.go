package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/data-plane/share"
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Share groups (KIP-932) shared by their API files (76-79, 90-92): the
// adapter of data-plane/share to the store, the acknowledgement path of
// ShareFetch and ShareAcknowledge, and the backlog metrics.
//
// Membership runs on the group's coordinator (its slot, as for consumer
// groups); a share-partition's delivery state runs on the partition's
// leader, where ShareFetch and ShareAcknowledge arrive, and its writes are
// fenced by the partition's leader epoch in Postgres, as the flush commit
// is: a deposed leader can never overwrite its successor's state.

// shareStore adapts the store to share.Partitions.
type shareStore struct{ s *Server }

// partitionID resolves a share-partition's partition in the routing view.
func (a shareStore) partitionID(k share.Key) (int64, error) {
	t := a.s.view.Load().topicByID(k.Cluster, k.Topic)
	pm := partitionOf(t, k.Partition)
	if pm == nil {
		return 0, store.ErrNotFound
	}
	return pm.ID, nil
}

func (a shareStore) LoadSharePartition(ctx context.Context, k share.Key) (share.Stored, error) {
	id, err := a.partitionID(k)
	if err != nil {
		return share.Stored{}, err
	}
	st, err := a.s.store.LoadSharePartition(ctx, k.Cluster, k.Group, id)
	return share.Stored{State: st.State, Start: st.Start, StateEpoch: st.StateEpoch}, err
}

func (a shareStore) SaveSharePartitions(ctx context.Context, ws []share.Write) error {
	rows := make([]store.SharePartitionState, len(ws))
	for i, w := range ws {
		id, err := a.partitionID(w.Key)
		if err != nil {
			return err
		}
		rows[i] = store.SharePartitionState{ClusterID: w.Cluster, Group: w.Group, PartitionID: id,
			LeaderEpoch: w.Epoch, StateEpoch: w.StateEpoch, Start: w.Start, State: w.State}
	}
	err := a.s.store.SaveSharePartitions(ctx, a.s.cfg.ID, rows)
	if errors.Is(err, store.ErrFenced) {
		return fmt.Errorf("%w: %w", share.ErrFenced, err)
	}
	return err
}

// shareCode maps the errors of data-plane/share to Kafka error codes.
func shareCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, share.ErrInvalidRecordState):
		return kerr.InvalidRecordState.Code
	case errors.Is(err, share.ErrInvalidAck):
		return kerr.InvalidRequest.Code
	case errors.Is(err, share.ErrSessionNotFound):
		return kerr.ShareSessionNotFound.Code
	case errors.Is(err, share.ErrInvalidSessionEpoch):
		return kerr.InvalidShareSessionEpoch.Code
	case errors.Is(err, share.ErrSessionLimit):
		return kerr.ShareSessionLimitReached.Code
	case errors.Is(err, share.ErrFenced):
		return kerr.NotLeaderForPartition.Code
	}
	code, _ := errCode(err)
	return code
}

// shareAck applies one partition's acknowledgement batches of member,
// after the same checks a fetch of it makes (READ on the topic, this
// broker leads it).
func (s *Server) shareAck(c *conn, group, member string, topic [16]byte, partition int32, acks []share.Ack) int16 {
	t := s.view.Load().topicByID(c.cluster, topic)
	if t == nil {
		return kerr.UnknownTopicID.Code
	}
	if !c.may(acl.Topic, t.Name, acl.Read) {
		return kerr.TopicAuthorizationFailed.Code
	}
	p, code := s.ledFor(t, partition, -1)
	if code != 0 {
		return code
	}
	logStart, hw := p.Offsets()
	k := share.Key{Cluster: c.cluster, Group: group, Topic: topic, Partition: partition}
	err := s.shares.Acknowledge(c.ctx, k, p.Epoch, share.Offsets{LogStart: logStart, HighWatermark: hw}, member, acks)
	if err != nil && !errors.Is(err, share.ErrInvalidRecordState) && !errors.Is(err, share.ErrInvalidAck) {
		s.log.Warn("share acknowledgement failed", "group", group, "partition", partition, "err", err)
	}
	return shareCode(err)
}

// shareMember checks a ShareFetch or ShareAcknowledge's group and member
// id: READ on the group (Kafka does not ask the coordinator whether the
// member belongs to the group; its id must merely be well formed).
func shareMember(c *conn, group, member *string) (string, string, int16) {
	g, m := deref(group), deref(member)
	if !c.may(acl.Group, g, acl.Read) {
		return "", "", kerr.GroupAuthorizationFailed.Code
	}
	if g == "" || m == "" || len(m) > 36 {
		return "", "", kerr.InvalidRequest.Code
	}
	return g, m, 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// waitAny returns when one of chans is closed, notify receives, the
// deadline passes or ctx ends. Its goroutines end before it returns.
func waitAny(ctx context.Context, chans []<-chan struct{}, notify <-chan struct{}, deadline time.Time) {
	done := make(chan struct{})
	woke := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Go(func() {
			select {
			case <-ch:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-done:
			}
		})
	}
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-woke:
	case <-notify:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	close(done)
	wg.Wait()
}

// shareBacklogCollector exports the backlog of the share-partitions this
// broker leads, read from Postgres at scrape time: the records between
// the share-partition start offset and the high watermark (not yet
// acknowledged or archived), which is what an autoscaler of share
// consumers scales by.
type shareBacklogCollector struct {
	s                *Server
	backlog, inFlght *prometheus.Desc
}

func newShareBacklogCollector(s *Server) *shareBacklogCollector {
	labels := []string{"virtual_cluster", "group", "topic", "partition"}
	return &shareBacklogCollector{
		s: s,
		backlog: prometheus.NewDesc("eddy_share_group_backlog",
			"Records of a partition a share group has not yet acknowledged or archived (high watermark - share-partition start offset).", labels, nil),
		inFlght: prometheus.NewDesc("eddy_share_group_acquired",
			"Records of a partition currently locked to share-group members.", labels, nil),
	}
}

func (c *shareBacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.inFlght
}

func (c *shareBacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.s.store.LedShareOffsets(ctx, c.s.cfg.ID)
	if err != nil {
		c.s.log.Warn("collecting share-group backlog", "err", err)
		return
	}
	acquired := make(map[share.Key]int)
	for _, st := range c.s.shares.Loaded() {
		acquired[st.Key] = st.Acquired
	}
	for _, r := range rows {
		if c.s.lead.Partition(r.PartitionID) == nil {
			continue // Postgres names this broker, but it has not taken the partition up (or is handing it off)
		}
		p := strconv.Itoa(int(r.Partition))
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(r.Backlog()), r.ClusterID, r.Group, r.Topic, p)
		k := share.Key{Cluster: r.ClusterID, Group: r.Group, Topic: r.TopicID, Partition: r.Partition}
		ch <- prometheus.MustNewConstMetric(c.inFlght, prometheus.GaugeValue, float64(acquired[k]), r.ClusterID, r.Group, r.Topic, p)
	}
}
