package client

import (
	"context"
	"net/http"
	"time"
)

// ConsumerGroup is a consumer group of a cluster as its committed offsets
// show it.
type ConsumerGroup struct {
	GroupID      string    `json:"group_id"`
	Partitions   int32     `json:"partitions"`
	TotalLag     int64     `json:"total_lag"`
	LastCommitAt time.Time `json:"last_commit_at"`
}

// GroupOffset is one committed offset and the lag behind the partition's
// high watermark (-1 when the topic no longer exists).
type GroupOffset struct {
	Topic           string    `json:"topic"`
	Partition       int32     `json:"partition"`
	CommittedOffset int64     `json:"committed_offset"`
	HighWatermark   int64     `json:"high_watermark"`
	Lag             int64     `json:"lag"`
	Metadata        string    `json:"metadata"`
	CommittedAt     time.Time `json:"committed_at"`
}

// ConsumerGroupDetail is one group with its offsets.
type ConsumerGroupDetail struct {
	ConsumerGroup
	Offsets []GroupOffset `json:"offsets"`
}

func groupsPath(cluster string) string { return "/v1/clusters/" + esc(cluster) + "/consumer-groups" }

// ListConsumerGroups lists a cluster's consumer groups with their total lag.
func (c *Client) ListConsumerGroups(ctx context.Context, cluster string, o ListOptions) (List[ConsumerGroup], error) {
	var out List[ConsumerGroup]
	_, err := c.do(ctx, http.MethodGet, groupsPath(cluster)+o.query(), nil, &out)
	return out, err
}

// GetConsumerGroup returns a group's committed offsets and lag.
func (c *Client) GetConsumerGroup(ctx context.Context, cluster, group string) (ConsumerGroupDetail, error) {
	var out ConsumerGroupDetail
	_, err := c.do(ctx, http.MethodGet, groupsPath(cluster)+"/"+esc(group), nil, &out)
	return out, err
}
