// Package clusterconfig knows the broker configs a virtual cluster has, as
// a Kafka cluster exposes them (DescribeConfigs on the broker resource):
// their names, defaults, types and how to validate a value, which of them
// the Kafka API may alter (Kafka's dynamic cluster-wide defaults), and the
// topic configs they are the defaults of.
//
// A cluster stores only the configs set explicitly; everything else is the
// default. Topic defaults (log.retention.ms, message.max.bytes, ...) are
// applied when a topic is created, beneath the configs it is created with
// (TopicDefaults), so changing one affects topics created afterwards only:
// a deviation from Kafka, where a topic without an override follows the
// cluster default as it changes.
//
// Everything here is read-only data and pure functions, safe for
// concurrent use.
package clusterconfig

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

// Errors: ErrInvalid for unknown names and bad values (Kafka's
// INVALID_CONFIG), ErrReadOnly for a change the Kafka API may not make
// (Kafka's INVALID_REQUEST, "cannot update these configs dynamically").
var (
	ErrInvalid  = errors.New("clusterconfig: invalid config")
	ErrReadOnly = errors.New("clusterconfig: read-only config")
)

// Def describes one broker config.
type Def struct {
	Name    string
	Default string
	Kind    topicconfig.Kind
	Doc     string
	// Dynamic configs may be altered through the Kafka API on the cluster
	// default (broker resource ""), as in Kafka; the others only through
	// the REST API and Terraform, and are reported read-only.
	Dynamic bool
	// Topic is the topic config this one is the cluster default of.
	Topic string
	check func(string) error
}

// Names of the configs other packages act on.
const (
	NumPartitions     = "num.partitions"
	AutoCreateTopics  = "auto.create.topics.enable"
	ReplicationFactor = "default.replication.factor"
)

// topicDef is the cluster default of topic config topic, validated as it.
func topicDef(name, topic, doc string) Def {
	d, ok := topicconfig.Lookup(topic)
	if !ok {
		panic("clusterconfig: no topic config " + topic)
	}
	return Def{Name: name, Default: d.Default, Kind: d.Kind, Doc: doc, Dynamic: true, Topic: topic,
		check: func(v string) error { return topicconfig.Validate(topic, v) }}
}

// defs is sorted by name.
var defs = func() []Def {
	d := []Def{
		{Name: AutoCreateTopics, Default: "true", Kind: topicconfig.Boolean, check: topicconfig.CheckBool,
			Doc: "topics are created on first use (Metadata, Produce)"},
		{Name: ReplicationFactor, Default: "1", Kind: topicconfig.Short, check: topicconfig.IntRange(1, 1<<15-1),
			Doc: "accepted and reported; durability comes from object storage, there are no replicas"},
		{Name: NumPartitions, Default: "1", Kind: topicconfig.Int, check: topicconfig.IntRange(1, topicconfig.MaxPartitions),
			Doc: "partitions of topics created automatically or without a count"},
		topicDef("compression.type", "compression.type", "default of the topic config compression.type"),
		topicDef("log.cleaner.delete.retention.ms", "delete.retention.ms", "default of the topic config delete.retention.ms"),
		topicDef("log.cleanup.policy", "cleanup.policy", "default of the topic config cleanup.policy"),
		topicDef("log.retention.bytes", "retention.bytes", "default of the topic config retention.bytes"),
		topicDef("log.retention.ms", "retention.ms", "default of the topic config retention.ms"),
		topicDef("log.segment.bytes", "segment.bytes", "default of the topic config segment.bytes"),
		topicDef("message.max.bytes", "max.message.bytes", "default of the topic config max.message.bytes"),
		topicDef("min.insync.replicas", "min.insync.replicas", "default of the topic config min.insync.replicas; accepted for compatibility"),
	}
	slices.SortFunc(d, func(a, b Def) int { return strings.Compare(a.Name, b.Name) })
	return d
}()

// Defs returns every broker config, sorted by name.
func Defs() []Def { return defs }

// byName indexes defs.
var byName = func() map[string]Def {
	m := make(map[string]Def, len(defs))
	for _, d := range defs {
		m[d.Name] = d
	}
	return m
}()

// Lookup returns the definition of name.
func Lookup(name string) (Def, bool) {
	d, ok := byName[name]
	return d, ok
}

// Validate checks one name and value.
func Validate(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown broker config %q", ErrInvalid, name)
	}
	if err := d.check(value); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, name, strings.TrimPrefix(err.Error(), topicconfig.ErrInvalid.Error()+": "+d.Topic+": "))
	}
	return nil
}

// ValidateAll checks a whole set, in the order of the names.
func ValidateAll(configs map[string]string) error {
	for _, n := range slices.Sorted(maps.Keys(configs)) {
		if err := Validate(n, configs[n]); err != nil {
			return err
		}
	}
	return nil
}

// CheckDynamic returns nil, or ErrReadOnly naming the configs that differ
// between cur and next and are not Dynamic: what the Kafka API may not
// change.
func CheckDynamic(cur, next map[string]string) error {
	var static []string
	for _, d := range defs {
		a, inCur := cur[d.Name]
		b, inNext := next[d.Name]
		if !d.Dynamic && (a != b || inCur != inNext) {
			static = append(static, d.Name)
		}
	}
	if static == nil {
		return nil
	}
	return fmt.Errorf("%w: cannot update %s dynamically; set them through the REST API or Terraform", ErrReadOnly, strings.Join(static, ", "))
}

// Within returns nil, or limits.FieldErrors naming (by config name) every
// config above the cluster's effective limits l: num.partitions above
// max_partitions, and the retention defaults above max_retention_ms and
// max_retention_bytes (limits.CheckTopicConfigs).
func Within(configs map[string]string, l limits.Limits) error {
	var fe limits.FieldErrors
	if n, err := strconv.ParseInt(configs[NumPartitions], 10, 64); err == nil && l.MaxPartitions != 0 && n > int64(l.MaxPartitions) {
		fe = append(fe, limits.FieldError{Field: NumPartitions, Msg: fmt.Sprintf("%d exceeds the cluster's max_partitions of %d", n, l.MaxPartitions)})
	}
	var terr limits.FieldErrors
	if errors.As(l.CheckTopicConfigs(TopicDefaults(configs)), &terr) {
		for _, e := range terr {
			for _, d := range defs {
				if d.Topic == e.Field {
					e.Field = d.Name
				}
			}
			fe = append(fe, e)
		}
	}
	if fe == nil {
		return nil
	}
	return fe
}

// WithinChange is Within for a change from cur to next: only the configs
// that next adds or changes are checked, as limits.Limits.WithinChange,
// so a cluster left above a ceiling the operator lowered since (its
// num.partitions above a new max_partitions, say) can still change its
// other configs.
func WithinChange(cur, next map[string]string, l limits.Limits) error {
	changed := map[string]string{}
	for k, v := range next {
		if old, ok := cur[k]; !ok || old != v {
			changed[k] = v
		}
	}
	return Within(changed, l)
}

// Value returns the effective value of name given the explicit set.
func Value(explicit map[string]string, name string) string {
	if v, ok := explicit[name]; ok {
		return v
	}
	d, _ := Lookup(name)
	return d.Default
}

// Partitions is num.partitions, the partition count of topics created
// automatically or without one.
func Partitions(explicit map[string]string) int32 {
	n, err := strconv.ParseInt(Value(explicit, NumPartitions), 10, 32)
	if err != nil || n < 1 {
		return 1
	}
	return int32(n)
}

// AutoCreate is auto.create.topics.enable.
func AutoCreate(explicit map[string]string) bool { return Value(explicit, AutoCreateTopics) != "false" }

// NewTopicDefaults returns what a new topic starts with beneath its own
// configs, however it is created: the cluster's default topic configs
// (default_topic_configs) over the topic defaults of its explicit broker
// configs (TopicDefaults). The store applies it on creation and the
// Terraform provider hides what it put there, so both must read the same
// layers in the same order.
func NewTopicDefaults(brokerConfigs, defaultTopicConfigs map[string]string) map[string]string {
	out := TopicDefaults(brokerConfigs)
	maps.Copy(out, defaultTopicConfigs)
	return out
}

// TopicDefaults returns the topic configs the explicit broker configs set
// defaults for (log.retention.ms as retention.ms, ...).
func TopicDefaults(explicit map[string]string) map[string]string {
	out := map[string]string{}
	for _, d := range defs {
		if v, ok := explicit[d.Name]; ok && d.Topic != "" {
			out[d.Topic] = v
		}
	}
	return out
}
