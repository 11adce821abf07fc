package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Encodings of a record's key, value or header value in JSON: text is
// the bytes as a UTF-8 string, base64 their standard encoding. Browsing
// shows valid UTF-8 as text and anything else as base64.
const (
	EncodingText   = "text"
	EncodingBase64 = "base64"
)

// RecordHeader is one Kafka record header.
type RecordHeader struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Encoding string `json:"encoding,omitempty"`
}

// ProduceRecord is one record to produce. A nil Key or Value is Kafka's
// null; Partition nil lets the key choose (murmur2, as Kafka's Java client).
type ProduceRecord struct {
	Partition     *int32         `json:"partition,omitempty"`
	Key           *string        `json:"key,omitempty"`
	KeyEncoding   string         `json:"key_encoding,omitempty"`
	Value         *string        `json:"value,omitempty"`
	ValueEncoding string         `json:"value_encoding,omitempty"`
	Headers       []RecordHeader `json:"headers,omitempty"`
}

// ProduceRequest is the body of a produce.
type ProduceRequest struct {
	Records []ProduceRecord `json:"records"`
}

// ProducedRecord is where one produced record landed, or, when only some
// records of a request were refused, why this one was (Error set, Offset
// -1).
type ProducedRecord struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Error     *Problem  `json:"error,omitempty"`
}

// ProduceResponse lists the produced records in request order. When every
// record was refused the answer is a problem instead; when only some
// were, each says whether it landed.
type ProduceResponse struct {
	Records []ProducedRecord `json:"records"`
}

// Record is a record read from a partition.
type Record struct {
	Partition     int32          `json:"partition"`
	Offset        int64          `json:"offset"`
	Timestamp     time.Time      `json:"timestamp"`
	Key           *string        `json:"key"`
	KeyEncoding   string         `json:"key_encoding"`
	Value         *string        `json:"value"`
	ValueEncoding string         `json:"value_encoding"`
	Headers       []RecordHeader `json:"headers"`
}

// Records is a page of a partition: the records from the requested
// position, the offset to continue from, and the partition's bounds when
// it was read.
type Records struct {
	Records        []Record `json:"records"`
	NextOffset     int64    `json:"next_offset"`
	LogStartOffset int64    `json:"log_start_offset"`
	HighWatermark  int64    `json:"high_watermark"`
}

// BrowseQuery selects where a browse starts: Offset, else the first record
// at or after Timestamp, else the partition's start. Limit 0 is the
// server's default.
type BrowseQuery struct {
	Offset    *int64
	Timestamp *time.Time
	Limit     int
}

func recordsPath(cluster, topic string) string {
	return "/v1/clusters/" + esc(cluster) + "/topics/" + esc(topic)
}

// ProduceRecords produces records to a topic, with the caller's Kafka
// permissions.
func (c *Client) ProduceRecords(ctx context.Context, cluster, topic string, req ProduceRequest, opts ...CallOption) (ProduceResponse, error) {
	var out ProduceResponse
	_, err := c.do(ctx, http.MethodPost, recordsPath(cluster, topic)+"/records", req, &out, opts...)
	return out, err
}

// BrowseRecords reads records of one partition.
func (c *Client) BrowseRecords(ctx context.Context, cluster, topic string, partition int32, q BrowseQuery) (Records, error) {
	v := url.Values{}
	if q.Offset != nil {
		v.Set("offset", strconv.FormatInt(*q.Offset, 10))
	}
	if q.Timestamp != nil {
		v.Set("timestamp", q.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := recordsPath(cluster, topic) + "/partitions/" + strconv.Itoa(int(partition)) + "/records"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out Records
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
