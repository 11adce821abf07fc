package topicconfig

import "fmt"

// MaxNameLength is Kafka's limit on topic names.
const MaxNameLength = 249

// MaxPartitions bounds the partitions of one topic, however it is created
// or grown (REST or the Kafka API); a cluster's max_partitions bounds
// those of all its topics (store.ErrLimit).
const MaxPartitions = 10_000

// CheckName applies Kafka's rules for topic names: 1 to 249 ASCII letters,
// digits, '.', '_' and '-', and not "." or "..". The error reads after the
// word "name" ("must not be empty", "is 300 characters long; ...").
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case name == "." || name == "..":
		return fmt.Errorf("must not be %q", name)
	case len(name) > MaxNameLength:
		return fmt.Errorf("is %d characters long; the limit is %d", len(name), MaxNameLength)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", r)
		}
	}
	return nil
}

// Internal topics' names: Kafka's, which Eddy's brokers answer for every
// cluster (data-plane/broker) and no tenant may create.
const (
	ConsumerOffsets  = "__consumer_offsets"
	TransactionState = "__transaction_state"
)

// InternalTopics lists the internal topics' names.
func InternalTopics() []string { return []string{ConsumerOffsets, TransactionState} }

// Internal reports whether name is an internal topic's.
func Internal(name string) bool { return name == ConsumerOffsets || name == TransactionState }
