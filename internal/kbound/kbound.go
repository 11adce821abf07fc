// Package kbound refuses Kafka request bodies whose announced lengths are
// absurd before kmsg decodes them, as Apache Kafka's request parsers do:
// an array of more than MaxArrayLen elements or more elements than bytes
// left, a tagged-field section of more than MaxTaggedFields fields or
// more than the bytes left could hold.
//
// kmsg alone bounds an array's length by the bytes left (one byte per
// element), but allocates the whole array from that length before reading
// an element, so a 1 MiB frame allocates 64 MiB of ProduceRequestTopic;
// and it loops over a tagged-field section as many times as its count
// says even after the input ran out, so five bytes announcing 2^32-1 tags
// keep a core busy for minutes. Check walks the body first, with the same
// kbin reads kmsg makes, allocating nothing, and stops at the first
// length it refuses.
//
// The shape of every request at every version comes from franz-go's own
// message definitions, the source kmsg is generated from
// (schema_gen.go, made by `go generate`); nothing here encodes a message
// by hand. Check is safe to call concurrently.
package kbound

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

//go:generate go run ./gen

// The limits, as Apache Kafka enforces them.
const (
	MaxArrayLen     = 1_000_000
	MaxTaggedFields = 10_000
)

// ErrLimit is wrapped by the errors of lengths over the limits.
var ErrLimit = errors.New("kbound: absurd length")

// Check walks a request body (after the request header) of the API key at
// version. It returns an error wrapping ErrLimit for a length over the
// limits, kbin.ErrNotEnoughData for a body that ends too early, and nil
// otherwise (and for keys and versions it has no schema of: kmsg decides).
func Check(key, version int16, body []byte) error {
	if key < 0 || int(key) >= len(requests) {
		return nil
	}
	rq := requests[key]
	if rq.body == nil || version < 0 || version > rq.max {
		return nil
	}
	w := walker{r: kbin.Reader{Src: body}, version: version, flexible: rq.flexibleAt >= 0 && version >= rq.flexibleAt}
	w.node(rq.body)
	if w.err != nil {
		return w.err
	}
	return w.r.Complete()
}

type request struct {
	max        int16
	flexibleAt int16 // -1: never flexible
	body       *node
}

type kind uint8

const (
	boolean kind = iota + 1
	int8_
	int16_
	uint16_
	int32_
	uint32_
	int64_
	float64_
	uuid
	varint
	varlong
	str
	nullableStr
	byts
	nullableByts
	varintStr
	varintByts
	array
	strukt
)

// node is a type on the wire, as franz-go's generator describes it.
type node struct {
	kind kind
	// flex: strings, bytes and arrays use compact lengths, and structs
	// end with a tagged-field section, in flexible versions (franz-go's
	// FromFlexible).
	flex bool
	// nullableFrom: a nullable string that was not nullable before this
	// version (nullable-string-vN+).
	nullableFrom int16
	elem         *node   // arrays
	varintLen    bool    // arrays: varint length (varint[...])
	nullable     bool    // structs: preceded by a presence byte (nullable=>)
	fields       []field // structs
}

// field is a struct's field present in versions min to max (-1: no end),
// or, with tag >= 0, a tagged field.
type field struct {
	min, max int16
	tag      int32
	typ      *node
}

type walker struct {
	r        kbin.Reader
	version  int16
	flexible bool
	err      error
}

func (w *walker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
	}
}

func (w *walker) ok() bool { return w.err == nil && w.r.Ok() }

// node walks one value of type n, with the reads kmsg's decoder makes.
func (w *walker) node(n *node) {
	r := &w.r
	compact := n.flex && w.flexible
	switch n.kind {
	case boolean, int8_:
		r.Int8()
	case int16_, uint16_:
		r.Int16()
	case int32_, uint32_:
		r.Int32()
	case int64_, float64_:
		r.Int64()
	case uuid:
		r.Uuid()
	case varint:
		r.Varint()
	case varlong:
		r.Varlong()
	case str:
		if compact {
			r.UnsafeCompactString()
		} else {
			r.UnsafeString()
		}
	case nullableStr:
		switch {
		case w.version < n.nullableFrom && compact:
			r.UnsafeCompactString()
		case w.version < n.nullableFrom:
			r.UnsafeString()
		case compact:
			r.UnsafeCompactNullableString()
		default:
			r.UnsafeNullableString()
		}
	case byts:
		if compact {
			r.CompactBytes()
		} else {
			r.Bytes()
		}
	case nullableByts:
		if compact {
			r.CompactNullableBytes()
		} else {
			r.NullableBytes()
		}
	case varintStr, varintByts:
		r.VarintBytes()
	case array:
		w.array(n, compact)
	case strukt:
		w.strukt(n)
	}
}

func (w *walker) array(n *node, compact bool) {
	r := &w.r
	var l int32
	switch {
	case n.varintLen:
		l = r.VarintArrayLen()
	case compact:
		l = r.CompactArrayLen()
	default:
		l = r.ArrayLen()
	}
	if l > MaxArrayLen {
		w.fail("array of %d elements", l)
	}
	for i := int32(0); i < l && w.ok(); i++ {
		w.node(n.elem)
	}
}

func (w *walker) strukt(n *node) {
	r := &w.r
	if n.nullable {
		if present := r.Int8(); present == -1 || !r.Ok() {
			return
		}
	}
	for i := range n.fields {
		f := &n.fields[i]
		if f.tag >= 0 || w.version < f.min || (f.max >= 0 && w.version > f.max) {
			continue
		}
		if w.node(f.typ); !w.ok() {
			return
		}
	}
	if !n.flex || !w.flexible {
		return
	}
	tags, err := tagCount(r)
	if err != nil {
		w.err = err
		return
	}
	for ; tags > 0 && w.ok(); tags-- {
		key := r.Uvarint()
		span := r.Span(int(r.Uvarint()))
		if f := n.tagged(key); f != nil && r.Ok() {
			// A known tag is decoded from its span, as kmsg does.
			inner := walker{r: kbin.Reader{Src: span}, version: w.version, flexible: w.flexible}
			inner.node(f.typ)
			if inner.err == nil {
				inner.err = inner.r.Complete()
			}
			if inner.err != nil {
				w.err = inner.err
			}
		}
	}
}

// tagCount reads the count of a tagged-field section and refuses one over
// MaxTaggedFields or over what the bytes left could hold (a tag takes at
// least two: its key and its size).
func tagCount(r *kbin.Reader) (uint32, error) {
	n := r.Uvarint()
	if err := r.Complete(); err != nil {
		return 0, err
	}
	if n > MaxTaggedFields || int(n) > len(r.Src)/2 {
		return 0, fmt.Errorf("%w: %d tagged fields in %d bytes", ErrLimit, n, len(r.Src))
	}
	return n, nil
}

// SkipTags skips a tagged-field section (a request header's, say) within
// the limits; kmsg.SkipTags loops as many times as the count says.
func SkipTags(r *kbin.Reader) error {
	n, err := tagCount(r)
	for ; n > 0 && err == nil; n-- {
		r.Uvarint() // key
		r.Span(int(r.Uvarint()))
		err = r.Complete()
	}
	return err
}

func (n *node) tagged(key uint32) *field {
	for i := range n.fields {
		if f := &n.fields[i]; f.tag >= 0 && uint32(f.tag) == key {
			return f
		}
	}
	return nil
}

// Constructors for schema_gen.go.

func prim(k kind) *node                { return &node{kind: k} }
func flexible(k kind, flex bool) *node { return &node{kind: k, flex: flex} }
func nullableFrom(flex bool, v int16) *node {
	return &node{kind: nullableStr, flex: flex, nullableFrom: v}
}
func arr(flex bool, elem *node) *node { return &node{kind: array, flex: flex, elem: elem} }
func varintArr(elem *node) *node      { return &node{kind: array, varintLen: true, elem: elem} }
func obj(flex, nullable bool, fields ...field) *node {
	return &node{kind: strukt, flex: flex, nullable: nullable, fields: fields}
}
func at(min, max int16, typ *node) field { return field{min: min, max: max, tag: -1, typ: typ} }
func tag(tag int32, typ *node) field     { return field{min: -1, max: -1, tag: tag, typ: typ} }
