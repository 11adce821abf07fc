package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/internal/acl"
	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic and broker configs as CreateTopics, DescribeConfigs, AlterConfigs
// and IncrementalAlterConfigs describe and alter them.
//
// Topic configs are the ones internal/topicconfig knows, with Kafka's
// names, defaults and types. Broker configs are the virtual cluster's
// (internal/clusterconfig), the same whichever broker of the pool is
// named: the resource name "" (the cluster default) or any broker id
// describes them. The Kafka API alters only the cluster default, and of it
// only what Kafka allows to change dynamically (log.retention.ms,
// message.max.bytes, ...); num.partitions, auto.create.topics.enable and
// default.replication.factor are read-only there (INVALID_REQUEST, as
// Kafka) and set through the REST API or Terraform. Everything stays
// within the plan's limits (POLICY_VIOLATION).

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceDynamicTopic         = 1
	sourceDynamicDefaultBroker = 3
	sourceStaticBroker         = 4
	sourceDefault              = 5
)

// configDef is a topic or broker config as DescribeConfigs reports it.
type configDef struct {
	name, def, doc string
	kind           topicconfig.Kind
	readOnly       bool
	setSource      kmsg.ConfigSource // the source of an explicit value
}

// topicConfigDefs and brokerConfigDefs are built once: the definitions
// they come from never change, and every DescribeConfigs and CreateTopics
// reads them. Read-only after init.
var (
	topicConfigDefs = func() []configDef {
		var out []configDef
		for _, d := range topicconfig.Defs() {
			out = append(out, configDef{name: d.Name, def: d.Default, doc: d.Doc, kind: d.Kind, setSource: sourceDynamicTopic})
		}
		return out
	}()
	brokerConfigDefs = func() []configDef {
		var out []configDef
		for _, d := range clusterconfig.Defs() {
			cd := configDef{name: d.Name, def: d.Default, doc: d.Doc, kind: d.Kind, readOnly: !d.Dynamic, setSource: sourceDynamicDefaultBroker}
			if !d.Dynamic {
				cd.setSource = sourceStaticBroker
			}
			out = append(out, cd)
		}
		return out
	}()
)

// describeConfigs describes defs given the explicit values, only those
// named if names is not nil.
func describeConfigs(defs []configDef, explicit map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range defs {
		if names != nil && !slices.Contains(names, d.name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = d.name
		val, set := explicit[d.name]
		if !set {
			val = d.def
		}
		rc.Value = &val
		rc.Source = sourceDefault
		rc.IsDefault = !set
		rc.ReadOnly = d.readOnly
		if set {
			rc.Source = d.setSource
		}
		rc.ConfigType = kmsg.ConfigType(d.kind)
		if docs {
			rc.Documentation = strp(d.doc)
		}
		if synonyms {
			if set {
				sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sy.Name, sy.Value, sy.Source = d.name, &val, d.setSource
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
			}
			def := d.def
			sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sy.Name, sy.Value, sy.Source = d.name, &def, sourceDefault
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
		}
		out = append(out, rc)
	}
	return out
}

// describeBroker describes the connection's cluster's broker configs.
func (s *Server) describeBroker(ctx context.Context, c *conn, rr kmsg.DescribeConfigsRequestResource, synonyms, docs bool) (int16, *string, []kmsg.DescribeConfigsResponseResourceConfig) {
	if !c.may(acl.Cluster, acl.ClusterName, acl.DescribeConfigs) {
		return kerr.ClusterAuthorizationFailed.Code, strp("not authorized to describe cluster configs"), nil
	}
	if code, msg := brokerName(rr.ResourceName, false); code != 0 {
		return code, msg, nil
	}
	// From Postgres, not the routing view: an alteration made through
	// another broker must show at once.
	explicit, err := s.store.BrokerConfigs(ctx, c.cluster)
	if err != nil {
		code, msg := errCode(err)
		return code, strp(msg), nil
	}
	return 0, nil, describeConfigs(brokerConfigDefs, explicit, rr.ConfigNames, synonyms, docs)
}

// brokerName checks a broker resource's name: "" (the cluster default)
// or a broker id, which describes the same configs but cannot be altered.
func brokerName(name string, alter bool) (int16, *string) {
	if name == "" {
		return 0, nil
	}
	if _, err := strconv.ParseInt(name, 10, 32); err != nil {
		return kerr.InvalidRequest.Code, strp(fmt.Sprintf("broker resource name %q is not a broker id", name))
	}
	if alter {
		return kerr.InvalidRequest.Code, strp(`brokers have no configs of their own; alter the cluster default (resource name "")`)
	}
	return 0, nil
}

// alterOther refuses altering what is neither a topic nor a broker.
func alterOther(rt kmsg.ConfigResourceType) (int16, *string) {
	return kerr.InvalidRequest.Code, strp(fmt.Sprintf("resource type %d cannot be altered", rt))
}

// alterBroker applies change to the cluster's broker configs: only the
// dynamic ones, within the plan's limits, as ALTER_CONFIGS on the cluster
// allows.
func (s *Server) alterBroker(c *conn, name string, change func(cur map[string]string) (map[string]string, error), validateOnly bool) (int16, *string) {
	if !c.may(acl.Cluster, acl.ClusterName, acl.AlterConfigs) {
		return kerr.ClusterAuthorizationFailed.Code, strp("not authorized to alter cluster configs")
	}
	if code, msg := brokerName(name, true); code != 0 {
		return code, msg
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	checked := func(cur map[string]string) (map[string]string, error) {
		next, err := change(maps.Clone(cur))
		if err != nil {
			return nil, err
		}
		if err := clusterconfig.ValidateAll(next); err != nil {
			return nil, err
		}
		if err := clusterconfig.CheckDynamic(cur, next); err != nil {
			return nil, err
		}
		return next, nil
	}
	// The limits are checked in the store, against Postgres, validate-only
	// or not.
	if err := s.store.SetBrokerConfigs(ctx, c.cluster, validateOnly, checked); err != nil {
		code, msg := errCode(err)
		return code, strp(msg)
	}
	if !validateOnly {
		s.refreshNow(ctx)
	}
	return 0, nil
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
