package broker

import (
	"errors"
	"runtime"
	"testing"
	"time"

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

// TestDecodeRequestLimits: frames announcing absurd lengths (an array of
// 2^31-1 or 900k elements, 2^32-1 tagged fields in the header or the body)
// are refused at once, allocating no more than the header's decoding
// needs; kmsg alone would allocate the array or loop over the tags for
// minutes.
func TestDecodeRequestLimits(t *testing.T) {
	hdr := func(key, version int16, flexible bool) []byte {
		b := kbin.AppendInt16(nil, key)
		b = kbin.AppendInt16(b, version)
		b = kbin.AppendInt32(b, 1)
		b = kbin.AppendNullableString(b, kmsg.StringPtr("bomb"))
		if flexible {
			b = append(b, 0)
		}
		return b
	}
	produceV3 := []byte{0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10}
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"array of 2^31-1", append(append(hdr(0, 3, false), produceV3...), 0x7f, 0xff, 0xff, 0xff, 0, 0)},
		{"900k topics in 1 MiB", append(append(append(hdr(0, 3, false), produceV3...), 0, 0x0d, 0xbb, 0xa0), make([]byte, 1<<20)...)},
		{"2^32-1 header tags", append(hdr(18, 3, false), 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 0)},
		{"2^32-1 body tags", append(hdr(18, 3, true), 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			if _, err := decodeRequest(tc.frame); !errors.Is(err, errBadRequest) {
				t.Fatalf("decoded (err %v); want it refused", err)
			}
			// Bounded work shows in the allocations below; the time
			// only catches a loop over the announced count (minutes for
			// kmsg), so its bound is loose: a race-detector build on a
			// loaded machine took 344 ms where 100 ms was asked.
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %s to refuse", took)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(20, func() { decodeRequest(tc.frame) })
			runtime.ReadMemStats(&after)
			if perRun := (after.TotalAlloc - before.TotalAlloc) / 21; allocs > 20 || perRun > 4<<10 {
				t.Fatalf("refusing it allocated %v times, %d bytes", allocs, perRun)
			}
		})
	}
}
