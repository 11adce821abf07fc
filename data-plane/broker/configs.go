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

// DescribeConfigs v0-v4, AlterConfigs v0-v2, IncrementalAlterConfigs v0-v1.
//
// Topic configs are the ones internal/topicconfig knows, with Kafka's
// names, defaults and types. Broker resources describe as empty and cannot
// be altered (tenants of a shared pool have no broker configs):
// POLICY_VIOLATION-free refusal with INVALID_REQUEST and a message.
// Authorization: DESCRIBE_CONFIGS (to describe) and ALTER_CONFIGS (to
// alter) on the topic, or on the cluster for broker resources.

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceDynamicTopic = 1
	sourceDefault      = 5
)

func describeTopicConfigs(explicit map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range topicconfig.Defs() {
		if names != nil && !slices.Contains(names, d.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = d.Name
		val, set := explicit[d.Name]
		if !set {
			val = d.Default
		}
		rc.Value = &val
		rc.Source = sourceDefault
		rc.IsDefault = !set
		if set {
			rc.Source = sourceDynamicTopic
		}
		rc.ConfigType = kmsg.ConfigType(d.Kind)
		if docs {
			rc.Documentation = strp(d.Doc)
		}
		if synonyms {
			if set {
				sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sy.Name, sy.Value, sy.Source = d.Name, &val, sourceDynamicTopic
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
			}
			def := d.Default
			sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sy.Name, sy.Value, sy.Source = d.Name, &def, sourceDefault
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
		}
		out = append(out, rc)
	}
	return out
}

func handleDescribeConfigs(s *Server, c *conn, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			if !c.may(acl.Topic, rr.ResourceName, acl.DescribeConfigs) {
				sr.ErrorCode, sr.ErrorMessage = kerr.TopicAuthorizationFailed.Code, strp("not authorized to describe this topic's configs")
				break
			}
			// Read from Postgres, not the routing view: an alteration made
			// through another broker must show at once.
			configs, err := s.store.TopicConfigs(ctx, c.cluster, rr.ResourceName)
			if err != nil {
				code, msg := errCode(err)
				sr.ErrorCode, sr.ErrorMessage = code, strp(msg)
				break
			}
			sr.Configs = describeTopicConfigs(configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case resourceBroker:
			// Nothing tenant-visible to describe.
			if !c.may(acl.Cluster, acl.ClusterName, acl.DescribeConfigs) {
				sr.ErrorCode, sr.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp("not authorized to describe cluster configs")
			}
		default:
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterOther refuses altering what is not a topic: the cluster's configs
// are not the tenant's, which is CLUSTER_AUTHORIZATION_FAILED for those
// not allowed to alter them and INVALID_REQUEST otherwise.
func alterOther(c *conn, rt kmsg.ConfigResourceType) (int16, *string) {
	if rt == resourceBroker && !c.may(acl.Cluster, acl.ClusterName, acl.AlterConfigs) {
		return kerr.ClusterAuthorizationFailed.Code, strp("not authorized to alter cluster configs")
	}
	return kerr.InvalidRequest.Code, strp("only topic configs can be altered")
}

// alterTopic validates and stores a topic's new explicit configs.
func (s *Server) alterTopic(c *conn, name string, next map[string]string, validateOnly bool) (int16, *string) {
	if err := topicconfig.ValidateAll(next); err != nil {
		return kerr.InvalidConfig.Code, strp(err.Error())
	}
	if validateOnly {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := s.store.SetTopicConfigs(ctx, c.cluster, name, next); err != nil {
		code, msg := errCode(err)
		return code, strp(msg)
	}
	s.refreshNow(ctx)
	return 0, nil
}

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
		default:
			sr.ErrorCode, sr.ErrorMessage = alterOther(c, rr.ResourceType)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

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
