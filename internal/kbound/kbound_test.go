package kbound

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fill sets every exported field of v to random values: strings, bytes
// and arrays of up to three elements, nil or set pointers, and unknown
// tags now and then.
func fill(rng *rand.Rand, v reflect.Value, top bool) {
	switch v.Kind() {
	case reflect.Struct:
		if tags, ok := v.Addr().Interface().(*kmsg.Tags); ok {
			if rng.IntN(4) == 0 {
				tags.Set(uint32(100+rng.IntN(50)), randBytes(rng))
			}
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || top && f.Name == "Version" {
				continue
			}
			fill(rng, v.Field(i), false)
		}
	case reflect.Pointer:
		if rng.IntN(3) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(rng, v.Elem(), false)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(randBytes(rng))
			return
		}
		n := rng.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(rng, v.Index(i), false)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(rng, v.Index(i), false)
		}
	case reflect.String:
		v.SetString(string(randBytes(rng)))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.Uint64())) // truncated to the field's size
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rng.Uint64())
	case reflect.Float64:
		v.SetFloat(rng.Float64())
	}
}

func randBytes(rng *rand.Rand) []byte {
	if rng.IntN(5) == 0 {
		return nil
	}
	b := make([]byte, rng.IntN(9))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestSchemaMatchesKmsg: for every request kmsg knows, at every version,
// random requests encoded by kmsg pass Check, and its walk ends exactly
// where kmsg's encoding does; kbound knows the same requests and versions.
func TestSchemaMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2026))
	for key := range int16(len(requests)) {
		rq, req := requests[key], kmsg.RequestForKey(key)
		switch {
		case req == nil && rq.body == nil:
			continue
		case req == nil || rq.body == nil:
			t.Errorf("key %d: kmsg has %v, kbound a schema: %v", key, req != nil, rq.body != nil)
			continue
		case req.MaxVersion() != rq.max:
			t.Errorf("%s: kmsg's max version is %d, kbound's %d", kmsg.NameForKey(key), req.MaxVersion(), rq.max)
		}
		for v := range rq.max + 1 {
			for range 25 {
				req := kmsg.RequestForKey(key)
				fill(rng, reflect.ValueOf(req).Elem(), true)
				req.SetVersion(v)
				b := req.AppendTo(nil)
				w := walker{r: kbin.Reader{Src: b}, version: v, flexible: rq.flexibleAt >= 0 && v >= rq.flexibleAt}
				w.node(rq.body)
				if err := errors.Join(w.err, w.r.Complete()); err != nil {
					t.Fatalf("%s v%d: kmsg's encoding (%x) refused: %v", kmsg.NameForKey(key), v, b, err)
				}
				if len(w.r.Src) != 0 {
					t.Fatalf("%s v%d: the walk ended %d bytes before kmsg's encoding (%x)", kmsg.NameForKey(key), v, len(w.r.Src), b)
				}
			}
		}
	}
}

// Crafted bodies that make kmsg allocate or loop in proportion to an
// announced length.
var crafted = []struct {
	name          string
	key, version  int16
	body          []byte
	limit, absurd bool // refused for a limit (else for missing data)
}{
	{
		name: "array of 2^31-1 topics", key: 0, version: 3,
		body: append([]byte{0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10, 0x7f, 0xff, 0xff, 0xff}, make([]byte, 64)...),
	},
	{
		// 2M elements with 2M bytes left: kbin lets the length pass.
		name: "array over a million", key: 0, version: 3, limit: true,
		body: append([]byte{0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10, 0, 0x1e, 0x84, 0x80}, make([]byte, 2_000_000)...),
	},
	{
		// 900k topics in 1 MiB: kmsg allocates 57 MB before reading one.
		name: "array longer than its bytes", key: 0, version: 3,
		body: append([]byte{0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10, 0, 0x0d, 0xbb, 0xa0}, make([]byte, 1<<20)...),
	},
	{
		// ApiVersions v3: two empty compact strings, 2^32-1 tags.
		name: "2^32-1 tags", key: 18, version: 3, limit: true,
		body: []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	},
	{
		name: "ten thousand and one tags", key: 18, version: 3, limit: true,
		body: append([]byte{1, 1, 0x91, 0x4e}, make([]byte, 40_000)...),
	},
	{
		// SaslAuthenticate v2: compact bytes, then 1,000 tags in 100 bytes.
		name: "more tags than bytes", key: 36, version: 2, limit: true,
		body: append([]byte{1, 0xe8, 0x07}, make([]byte, 100)...),
	},
}

// TestCraftedBodies: absurd lengths are refused at once and without
// allocating, where kmsg would allocate or loop in proportion to them.
func TestCraftedBodies(t *testing.T) {
	for _, tc := range crafted {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := Check(tc.key, tc.version, tc.body)
			took := time.Since(start)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrLimit) != tc.limit {
				t.Fatalf("refused with %v; want a limit error: %v", err, tc.limit)
			}
			if allocs := testing.AllocsPerRun(10, func() { Check(tc.key, tc.version, tc.body) }); allocs > 10 {
				t.Fatalf("%v allocations to refuse it", allocs)
			}
			// The time only catches a loop over the announced count
			// (kmsg's would run for minutes), so its bound is loose: a
			// race-detector build on a loaded machine took 335 ms.
			if took > 5*time.Second {
				t.Fatalf("took %s to refuse it", took)
			}
		})
	}
}

// TestSkipTags: a header's tag section is walked within the limits.
func TestSkipTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"none", []byte{0}, true},
		{"one", []byte{1, 5, 2, 'h', 'i'}, true},
		{"2^32-1", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, false},
		{"more than bytes", []byte{3, 1, 0}, false},
		{"truncated", []byte{1, 5, 9, 'h'}, false},
	} {
		r := kbin.Reader{Src: tc.in}
		if err := SkipTags(&r); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// FuzzCheck: below the limits, Check accepts exactly what kmsg decodes.
func FuzzCheck(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, key := range []int16{0, 1, 3, 8, 11, 18, 19, 36} {
		req := kmsg.RequestForKey(key)
		fill(rng, reflect.ValueOf(req).Elem(), true)
		v := req.MaxVersion()
		req.SetVersion(v)
		f.Add(key, v, req.AppendTo(nil))
	}
	for _, tc := range crafted {
		f.Add(tc.key, tc.version, tc.body[:min(len(tc.body), 64)])
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		err := Check(key, version, body)
		req := kmsg.RequestForKey(key)
		if errors.Is(err, ErrLimit) || req == nil || version < 0 || version > req.MaxVersion() {
			return
		}
		// Safe now: every length kmsg loops or allocates for was
		// bounded by the walk.
		req.SetVersion(version)
		if kerr := req.ReadFrom(body); (err == nil) != (kerr == nil) {
			t.Fatalf("%s v%d %x: kbound says %v, kmsg %v", kmsg.NameForKey(key), version, body, err, kerr)
		}
	})
}

// BenchmarkCheck: the walk's cost next to kmsg's decoding of the same
// body, for a produce of 10 partitions of 16 KiB and a fetch of 100
// partitions.
func BenchmarkCheck(b *testing.B) {
	produce := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	for i := range 10 {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = int32(i), make([]byte, 16<<10)
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	for i := range 100 {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = int32(i)
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)
	for _, req := range []kmsg.Request{produce, fetch} {
		req.SetVersion(req.MaxVersion() - 1)
		body := req.AppendTo(nil)
		name := kmsg.NameForKey(req.Key())
		b.Run(name+"/check", func(b *testing.B) {
			for b.Loop() {
				if err := Check(req.Key(), req.GetVersion(), body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/kmsg", func(b *testing.B) {
			for b.Loop() {
				if err := req.ReadFrom(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
