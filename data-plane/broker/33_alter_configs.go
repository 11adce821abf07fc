package broker

import (
	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs (API key 33).
// Versions: 0-2.
//
// Replaces a topic's whole set of configs; what is not named returns to its
// default, as in Kafka.
//
// On the broker resource "" (the cluster default) it replaces the dynamic
// broker configs; the read-only ones (num.partitions, ...) must be sent
// unchanged or left out, and are kept (configs.go).
//
// Deviation: a broker id cannot be altered (a virtual cluster has no
// per-broker configs): INVALID_REQUEST with a message.
//
// Authorization: ALTER_CONFIGS on the topic, or on the cluster for broker
// resources.

func handleAlterConfigs(s *Server, c *conn, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			if !c.may(acl.Topic, rr.ResourceName, acl.AlterConfigs) {
				sr.ErrorCode, sr.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to alter this topic's configs")
				break
			}
			if _, t := s.topic(c, rr.ResourceName); t == nil {
				sr.ErrorCode, sr.ErrorMessage = kerr.UnknownTopicOrPartition.Code, strp("topic does not exist")
				break
			}
			// AlterConfigs replaces the whole set: what is not named
			// returns to its default, as in Kafka.
			next := map[string]string{}
			for _, cf := range rr.Configs {
				if cf.Value != nil {
					next[cf.Name] = *cf.Value
				}
			}
			sr.ErrorCode, sr.ErrorMessage = s.alterTopic(c, rr.ResourceName, next, req.ValidateOnly)
		case resourceBroker:
			sr.ErrorCode, sr.ErrorMessage = s.alterBroker(c, rr.ResourceName, func(cur map[string]string) (map[string]string, error) {
				next := map[string]string{}
				for k, v := range cur {
					if d, ok := clusterconfig.Lookup(k); ok && !d.Dynamic {
						next[k] = v
					}
				}
				for _, cf := range rr.Configs {
					if cf.Value != nil {
						next[cf.Name] = *cf.Value
					}
				}
				return next, nil
			}, req.ValidateOnly)
		default:
			sr.ErrorCode, sr.ErrorMessage = alterOther(rr.ResourceType)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
