package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
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

// ShareGroup is a share group (KIP-932) of a cluster as its stored
// share-partitions show it. Backlog is the records between each
// share-partition's start offset and the high watermark, not yet
// acknowledged or archived: what to scale share consumers by.
type ShareGroup struct {
	GroupID    string    `json:"group_id"`
	Partitions int32     `json:"partitions"`
	Backlog    int64     `json:"backlog"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ShareOffset is one share-partition of a share group.
type ShareOffset struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	StartOffset   int64  `json:"start_offset"`
	HighWatermark int64  `json:"high_watermark"`
	Backlog       int64  `json:"backlog"`
}

// ShareGroupDetail is one share group with its share-partitions.
type ShareGroupDetail struct {
	ShareGroup
	Offsets []ShareOffset `json:"offsets"`
}

// ShareGroupReset is where ResetShareGroup starts a share group's
// partitions over: "earliest" (the log start) or "latest" (the high
// watermark).
type ShareGroupReset struct {
	To string `json:"to"`
}

func shareGroupsPath(cluster string) string { return "/v1/clusters/" + esc(cluster) + "/share-groups" }

// ListShareGroups lists a cluster's share groups with their backlog.
func (c *Client) ListShareGroups(ctx context.Context, cluster string, o ListOptions) (List[ShareGroup], error) {
	var out List[ShareGroup]
	_, err := c.do(ctx, http.MethodGet, shareGroupsPath(cluster)+o.query(), nil, &out)
	return out, err
}

// GetShareGroup returns a share group's share-partitions and backlog.
func (c *Client) GetShareGroup(ctx context.Context, cluster, group string) (ShareGroupDetail, error) {
	var out ShareGroupDetail
	_, err := c.do(ctx, http.MethodGet, shareGroupsPath(cluster)+"/"+esc(group), nil, &out)
	return out, err
}

// ResetShareGroup starts every share-partition of a share group over at
// the earliest or latest offset, forgetting what is in flight.
func (c *Client) ResetShareGroup(ctx context.Context, cluster, group string, r ShareGroupReset) (ShareGroupDetail, error) {
	var out ShareGroupDetail
	_, err := c.do(ctx, http.MethodPost, shareGroupsPath(cluster)+"/"+esc(group)+"/reset", r, &out)
	return out, err
}

// DeleteShareGroupOffsets deletes a share group's share-partition state.
func (c *Client) DeleteShareGroupOffsets(ctx context.Context, cluster, group string) error {
	_, err := c.do(ctx, http.MethodDelete, shareGroupsPath(cluster)+"/"+esc(group)+"/offsets", nil, nil)
	return err
}

// LagHistory is a consumer group's lag as the control plane sampled it
// (GET .../consumer-groups/{g}/lag-history), oldest first.
type LagHistory struct {
	GroupID string      `json:"group_id"`
	Samples []LagSample `json:"samples"`
	// NextSince, when set, is where the next page starts: pass it as
	// LagHistoryQuery.Since.
	NextSince *time.Time `json:"next_since,omitempty"`
}

// LagSample is a group's lag at one instant.
type LagSample struct {
	At         time.Time      `json:"at"`
	TotalLag   int64          `json:"total_lag"`
	Partitions []PartitionLag `json:"partitions"`
}

// PartitionLag is one partition's lag in a LagSample.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

// LagHistoryQuery selects samples: those after Since (zero: the last
// 24 hours), at most Limit (zero: the server's default, 1440).
type LagHistoryQuery struct {
	Since time.Time
	Limit int
}

// GetLagHistory returns a group's sampled lag.
func (c *Client) GetLagHistory(ctx context.Context, cluster, group string, q LagHistoryQuery) (LagHistory, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := groupsPath(cluster) + "/" + esc(group) + "/lag-history"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out LagHistory
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
