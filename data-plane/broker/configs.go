package broker

import (
	"context"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic configs as CreateTopics, DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs describe and alter them.
//
// Topic configs are the ones internal/topicconfig knows, with Kafka's
// names, defaults and types. Broker resources describe as empty and cannot
// be altered (tenants of a shared pool have no broker configs):
// POLICY_VIOLATION-free refusal with INVALID_REQUEST and a message.

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
