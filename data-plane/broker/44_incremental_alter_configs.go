package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs (API key 44).
// Versions: 0-1.
//
// Applies SET, DELETE, APPEND and SUBTRACT to a topic's configs as stored
// in Postgres (APPEND and SUBTRACT to list configs only).
//
// On the broker resource "" (the cluster default) it alters the dynamic
// broker configs (configs.go); the read-only ones are INVALID_REQUEST, as
// in Kafka.
//
// Deviation: a broker id cannot be altered (a virtual cluster has no
// per-broker configs): INVALID_REQUEST with a message.
//
// Authorization: ALTER_CONFIGS on the topic, or on the cluster for broker
// resources.

func handleIncrementalAlterConfigs(s *Server, c *conn, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = s.incrementalAlter(ctx, c, rr, req.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (s *Server) incrementalAlter(ctx context.Context, c *conn, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, *string) {
	switch rr.ResourceType {
	case resourceBroker:
		listDefault := func(name string) (string, bool) {
			d, ok := clusterconfig.Lookup(name)
			return d.Default, ok && d.Kind == topicconfig.List
		}
		return s.alterBroker(c, rr.ResourceName, func(cur map[string]string) (map[string]string, error) {
			next, err := applyIncremental(cur, rr.Configs, listDefault)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", clusterconfig.ErrInvalid, err)
			}
			return next, nil
		}, validateOnly)
	case resourceTopic:
	default:
		return alterOther(kmsg.ConfigResourceType(rr.ResourceType))
	}
	if !c.may(acl.Topic, rr.ResourceName, acl.AlterConfigs) {
		return kerr.TopicAuthorizationFailed.Code, strp("not authorized to alter this topic's configs")
	}
	cur, err := s.store.TopicConfigs(ctx, c.cluster, rr.ResourceName)
	if err != nil {
		code, msg := errCode(err)
		return code, strp(msg)
	}
	listDefault := func(name string) (string, bool) {
		d, ok := topicconfig.Lookup(name)
		return d.Default, ok && d.Kind == topicconfig.List
	}
	next, err := applyIncremental(maps.Clone(cur), rr.Configs, listDefault)
	if err != nil {
		return kerr.InvalidConfig.Code, strp(err.Error())
	}
	return s.alterTopic(c, rr.ResourceName, next, validateOnly)
}

// applyIncremental applies SET, DELETE, APPEND and SUBTRACT to the
// explicit configs next (nil: none); APPEND and SUBTRACT only to list
// configs, starting from their explicit value or else the default
// listDefault gives.
func applyIncremental(next map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, listDefault func(name string) (def string, isList bool)) (map[string]string, error) {
	if next == nil {
		next = map[string]string{}
	}
	for _, cf := range ops {
		val := ""
		if cf.Value != nil {
			val = *cf.Value
		}
		switch cf.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[cf.Name] = val
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, cf.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			cur, isList := listDefault(cf.Name)
			if !isList {
				return nil, fmt.Errorf("%s is not a list config; APPEND and SUBTRACT apply only to lists", cf.Name)
			}
			if v, ok := next[cf.Name]; ok {
				cur = v
			}
			vals := strings.Split(cur, ",")
			if cf.Op == kmsg.IncrementalAlterConfigOpAppend {
				if !slices.Contains(vals, val) {
					vals = append(vals, val)
				}
			} else {
				vals = slices.DeleteFunc(vals, func(x string) bool { return x == val })
			}
			next[cf.Name] = strings.Join(vals, ",")
		default:
			return nil, fmt.Errorf("unknown operation %d", cf.Op)
		}
	}
	return next, nil
}
