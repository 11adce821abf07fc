package broker

import (
	"context"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata (API key 3).
// Versions: 0-12.
//
// Every broker of the shared pool is listed; topics are only the
// connection's virtual cluster's. There is no replication: each partition's
// replica set and ISR is its leader (durability comes from object storage).
// A missing topic is created when the request allows it (v4+
// AllowAutoTopicCreation; always before v4) and the cluster has automatic
// creation on; the response then waits briefly for placement so the client
// gets leaders at once.
//
// Deviation: a partition without a live leader (between a broker's death
// and the next placement) is not answered LEADER_NOT_AVAILABLE but with a
// stand-in leader, a live broker that answers NOT_LEADER_OR_FOLLOWER until
// the partition is placed (view.metadataLeader): every client retries that
// error, while some treat LEADER_NOT_AVAILABLE as fatal or wait minutes to
// ask again.
//
// Authorization, as Kafka: a listing of all topics shows those the
// principal may DESCRIBE; a named topic it may not describe is answered
// TOPIC_AUTHORIZATION_FAILED (whether it exists or not), and so is a
// missing one it may not CREATE when the request would create it.
//
// Internal topics (__consumer_offsets, __transaction_state) are listed
// with IsInternal and never created (internaltopics.go).

func handleMetadata(s *Server, c *conn, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	v := s.view.Load()

	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	var created []string
	createDenied := map[string]bool{}
	if allowCreate {
		cl := v.clusters[c.cluster]
		for _, rt := range req.Topics {
			if rt.Topic == nil || !c.sees(acl.Topic, *rt.Topic) {
				continue
			}
			if topicconfig.Internal(*rt.Topic) {
				continue
			}
			if _, t := s.topic(c, *rt.Topic); t == nil && cl.AutoCreateTopics && validTopicName(*rt.Topic) == nil {
				if !c.mayCreateTopic(*rt.Topic) {
					createDenied[*rt.Topic] = true
				} else if s.autoCreate(c, *rt.Topic) {
					created = append(created, *rt.Topic)
				}
			}
		}
	}
	v = s.view.Load() // lookups above may have refreshed it
	if len(created) > 0 {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		v = s.awaitLeaders(ctx, c.cluster, created)
		cancel()
	}

	for _, b := range v.brokers {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.ID, b.Host, b.Port, strp(b.Rack)
		resp.Brokers = append(resp.Brokers, rb)
	}
	resp.ClusterID = strp(c.cluster)
	resp.ControllerID = s.controllerID(v)

	var topics []*store.Topic
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range v.topics[c.cluster] {
			if c.sees(acl.Topic, t.Name) {
				topics = append(topics, t)
			}
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	}
	for _, t := range topics {
		resp.Topics = append(resp.Topics, s.metadataTopic(v, t))
	}
	if all {
		for _, name := range topicconfig.InternalTopics() {
			if c.sees(acl.Topic, name) {
				resp.Topics = append(resp.Topics, v.internalMetadataTopic(c.cluster, name))
			}
		}
		sortMetadataTopics(resp.Topics)
	} else {
		for _, rt := range req.Topics {
			var t *store.Topic
			switch {
			case rt.Topic != nil && (!c.may(acl.Topic, *rt.Topic, acl.Describe) || createDenied[*rt.Topic]):
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic, mt.ErrorCode = rt.Topic, kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			case rt.Topic != nil && topicconfig.Internal(*rt.Topic):
				resp.Topics = append(resp.Topics, v.internalMetadataTopic(c.cluster, *rt.Topic))
				continue
			case rt.Topic != nil:
				_, t = s.topic(c, *rt.Topic)
			case rt.TopicID != [16]byte{}:
				if name := internalByID(c.cluster, rt.TopicID); name != "" {
					if c.may(acl.Topic, name, acl.Describe) {
						resp.Topics = append(resp.Topics, v.internalMetadataTopic(c.cluster, name))
					} else {
						mt := kmsg.NewMetadataResponseTopic()
						mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.TopicAuthorizationFailed.Code
						resp.Topics = append(resp.Topics, mt)
					}
					continue
				}
				t = v.topicByID(c.cluster, rt.TopicID)
				if t != nil && !c.may(acl.Topic, t.Name, acl.Describe) {
					mt := kmsg.NewMetadataResponseTopic()
					mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.TopicAuthorizationFailed.Code
					resp.Topics = append(resp.Topics, mt)
					continue
				}
			}
			if t != nil {
				resp.Topics = append(resp.Topics, s.metadataTopic(v, t))
				continue
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				mt.ErrorCode = kerr.UnknownTopicID.Code
			} else if err := validTopicName(*rt.Topic); err != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
		}
	}
	return resp
}

func (s *Server) metadataTopic(v *view, t *store.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID = &name, t.ID
	mt.Partitions = v.metadataPartitions(t)
	return mt
}

// metadataPartitions are t's partitions as Metadata answers them in view
// v, built once per view and topic: a listing of all topics of a large
// cluster then costs the encoding alone, not 10,000 partitions' worth of
// allocations per request. The slice is shared by every response of the
// view: it is read (encoded), never changed.
func (v *view) metadataPartitions(t *store.Topic) []kmsg.MetadataResponseTopicPartition {
	if ps, ok := v.mdParts.Load(t); ok {
		return ps.([]kmsg.MetadataResponseTopicPartition)
	}
	ps := make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i := range t.Partitions {
		p := &t.Partitions[i]
		mp := &ps[i]
		*mp = kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Partition
		mp.Leader = v.metadataLeader(p)
		mp.LeaderEpoch = p.LeaderEpoch
		if mp.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		} else {
			r := v.alone(mp.Leader)
			mp.Replicas, mp.ISR = r, r
		}
	}
	v.mdParts.Store(t, ps)
	return ps
}
