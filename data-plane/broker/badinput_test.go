package broker_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFrame sends one frame on a fresh connection and returns the response
// body (after the correlation id), or nil if the broker closed the
// connection instead.
func rawFrame(t *testing.T, addr string, frame []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return nil
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("short response: %v", err)
	}
	return body[4:]
}

func sized(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func header(key, version int16) []byte {
	b := kbin.AppendInt16(nil, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, 42)
	return kbin.AppendNullableString(b, kmsg.StringPtr("bad-input-test"))
}

// validBatch returns a one-record magic-2 batch.
func validBatch(value []byte) []byte {
	return batchtest.Build(batchtest.Spec{N: 1, Value: value, ProducerID: -1})
}

func produceRaw(t *testing.T, cl *kgo.Client, topic string, records []byte) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Send to the one broker directly: kgo's producer would refuse to
	// send broken batches.
	resp, err := req.RequestWith(ctx, cl.Broker(1))
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestBadInput: broken frames close the connection; unknown APIs and
// versions get what Kafka gives; corrupt, oversize and misdirected batches
// get Kafka's error codes; and the broker keeps serving everyone else.
func TestBadInput(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 1})
	addr := s.Bootstrap()[0]
	cl := newClient(t, s)
	createTopic(t, cl, "small", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("1000")})

	t.Run("frames", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			frame []byte
		}{
			{"negative size", []byte{0xff, 0xff, 0xff, 0xff, 0, 0}},
			{"huge size", []byte{0x7f, 0xff, 0xff, 0xff}},
			{"truncated header", sized([]byte{0, 3, 0})},
			{"unknown api key", sized(header(999, 0))},
			{"unsupported version", sized(header(3, 99))},
			{"garbage body", sized(append(header(3, 12), 0xde, 0xad, 0xbe, 0xef, 0xff))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if resp := rawFrame(t, addr, tc.frame); resp != nil {
					t.Fatalf("broker answered %x; it must close the connection", resp)
				}
			})
		}
	})

	t.Run("api versions too new", func(t *testing.T) {
		body := rawFrame(t, addr, sized(append(header(18, 99), 0)))
		if body == nil {
			t.Fatal("connection closed; KIP-511 wants an UNSUPPORTED_VERSION answer in v0")
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("got error %d with %d keys", resp.ErrorCode, len(resp.ApiKeys))
		}
	})

	t.Run("corrupt batch", func(t *testing.T) {
		b := validBatch([]byte("hello"))
		b[len(b)-1] ^= 0xff
		if code := produceRaw(t, cl, "small", b); code != kerr.CorruptMessage.Code {
			t.Fatalf("got %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(code))
		}
	})
	t.Run("oversize batch", func(t *testing.T) {
		if code := produceRaw(t, cl, "small", validBatch(make([]byte, 2000))); code != kerr.MessageTooLarge.Code {
			t.Fatalf("got %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(code))
		}
	})
	t.Run("missing topic, auto-create off", func(t *testing.T) {
		st, err := store.Open(context.Background(), url, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.SetAutoCreateTopics(context.Background(), "vc-dev", false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // brokers re-read metadata every 250ms
		if code := produceRaw(t, cl, "nowhere", validBatch([]byte("x"))); code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("got %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
		}
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("nowhere")
		md.Topics, md.AllowAutoTopicCreation = append(md.Topics, mt), true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := md.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("metadata: got %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
		}
		if err := st.SetAutoCreateTopics(context.Background(), "vc-dev", true); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("still serving", func(t *testing.T) {
		code := produceRaw(t, cl, "small", validBatch([]byte("fine")))
		if code != 0 {
			t.Fatalf("a good produce after all that got %v", kerr.ErrorForCode(code))
		}
	})
}
