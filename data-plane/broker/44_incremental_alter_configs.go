package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
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
// Deviation: broker resources cannot be altered (tenants of a shared pool
// have no broker configs): POLICY_VIOLATION-free refusal with
// INVALID_REQUEST and a message (configs.go).
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
		if rr.ResourceType != resourceTopic {
			sr.ErrorCode, sr.ErrorMessage = alterOther(c, kmsg.ConfigResourceType(rr.ResourceType))
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if !c.may(acl.Topic, rr.ResourceName, acl.AlterConfigs) {
			sr.ErrorCode, sr.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to alter this topic's configs")
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		cur, err := s.store.TopicConfigs(ctx, c.cluster, rr.ResourceName)
		if err != nil {
			code, msg := errCode(err)
			sr.ErrorCode, sr.ErrorMessage = code, strp(msg)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		next := maps.Clone(cur)
		if next == nil {
			next = map[string]string{}
		}
		var bad error
		for _, cf := range rr.Configs {
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
				d, ok := topicconfig.Lookup(cf.Name)
				if !ok || d.Kind != topicconfig.List {
					bad = fmt.Errorf("%s is not a list config; APPEND and SUBTRACT apply only to lists", cf.Name)
					break
				}
				cur := strings.Split(topicconfig.Value(next, cf.Name), ",")
				if cf.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(cur, val) {
						cur = append(cur, val)
					}
				} else {
					cur = slices.DeleteFunc(cur, func(x string) bool { return x == val })
				}
				next[cf.Name] = strings.Join(cur, ",")
			default:
				bad = fmt.Errorf("unknown operation %d", cf.Op)
			}
		}
		if bad != nil {
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidConfig.Code, strp(bad.Error())
		} else {
			sr.ErrorCode, sr.ErrorMessage = s.alterTopic(c, rr.ResourceName, next, req.ValidateOnly)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}
