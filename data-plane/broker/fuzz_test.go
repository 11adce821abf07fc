package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameFor encodes req as a client would (without the size prefix).
func frameFor(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	b := kbin.AppendInt16(nil, req.Key())
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, 7)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("fuzz"))
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// FuzzDecodeRequest: no input makes request decoding panic, and whatever
// decodes re-encodes to a frame that decodes again.
func FuzzDecodeRequest(f *testing.F) {
	md := kmsg.NewPtrMetadataRequest()
	f.Add(frameFor(md, 12))
	f.Add(frameFor(md, 0))
	pr := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	f.Add(frameFor(pr, 9))
	f.Add(frameFor(pr, 3))
	fr := kmsg.NewPtrFetchRequest()
	f.Add(frameFor(fr, 16))
	f.Add(frameFor(kmsg.NewPtrApiVersionsRequest(), 3))
	f.Add(frameFor(kmsg.NewPtrApiVersionsRequest(), 9))
	f.Add(frameFor(kmsg.NewPtrCreateTopicsRequest(), 7))
	f.Add([]byte{0, 3})
	f.Fuzz(func(t *testing.T, buf []byte) {
		rq, err := decodeRequest(buf)
		if err != nil || rq.req == nil {
			return
		}
		again, err := decodeRequest(frameFor(rq.req, rq.version))
		if err != nil {
			t.Fatalf("re-encoded %s v%d does not decode: %v", kmsg.NameForKey(rq.key), rq.version, err)
		}
		if again.key != rq.key {
			t.Fatalf("key changed from %d to %d", rq.key, again.key)
		}
	})
}
