package batch

import "iter"

// Each calls fn for every complete batch in b, a concatenation of batches
// as stored or served, with its header and bytes (capped, so appending to
// raw cannot clobber the next batch). It stops when fn returns false, and
// at the first batch that is short or whose header does not parse: a fetch
// response may end in a partial batch. Each does not check CRCs.
func Each(b []byte, fn func(h Header, raw []byte) bool) {
	for len(b) > 0 {
		h, err := ParseHeader(b)
		if err != nil || int64(h.Length)+lengthOverhead > int64(len(b)) {
			return
		}
		n := h.Size()
		if !fn(h, b[:n:n]) {
			return
		}
		b = b[n:]
	}
}

// All is Each as an iterator, for range loops.
func All(b []byte) iter.Seq2[Header, []byte] {
	return func(yield func(Header, []byte) bool) { Each(b, yield) }
}
