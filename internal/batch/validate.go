package batch

import "fmt"

// Validate checks the records field of a produce request: one or more
// complete magic-2 batches back to back, each with a correct CRC, a length
// consistent with the data, at least one record, lastOffsetDelta equal to
// recordCount-1, a known codec, and neither the control nor the
// delete-horizon bit. If maxBytes > 0, the
// records may be at most maxBytes long. It returns the batches' headers in
// order.
//
// Kafka itself accepts exactly one batch per partition from produce v3 on;
// a broker that wants that rule checks len(headers) == 1.
func Validate(records []byte, maxBytes int) ([]Header, error) {
	// Room for the usual single batch, so that a caller that keeps the
	// result local can have it on the stack once this is inlined.
	return ValidateInto(make([]Header, 0, 1), records, maxBytes)
}

// ValidateInto is Validate appending the headers to dst, so that a caller
// reusing dst validates without allocating. On error it returns dst
// unchanged in length.
func ValidateInto(dst []Header, records []byte, maxBytes int) ([]Header, error) {
	if len(records) == 0 {
		return dst, fmt.Errorf("%w: no records", ErrInvalid)
	}
	// Checked up front so that an oversized request costs no CRC work.
	if maxBytes > 0 && len(records) > maxBytes {
		return dst, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrTooLarge, len(records), maxBytes)
	}
	return validate(dst, records, false)
}

// ValidateWritten is Validate for batches the broker wrote itself (its
// WAL, replayed after a restart): control batches, its transaction
// markers, are accepted.
func ValidateWritten(records []byte) ([]Header, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrInvalid)
	}
	return validate(nil, records, true)
}

func validate(dst []Header, records []byte, control bool) ([]Header, error) {
	n := len(dst)
	for pos := 0; pos < len(records); {
		h, err := validateOne(records[pos:], control)
		if err != nil {
			return dst[:n], fmt.Errorf("%w (batch %d at byte %d)", err, len(dst)-n, pos)
		}
		dst = append(dst, h)
		pos += h.Size()
	}
	return dst, nil
}

// validateOne validates the batch at the start of b, which may run on into
// further batches.
func validateOne(b []byte, control bool) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	// Compare in int64: on 32-bit platforms Size() could overflow int.
	if int64(h.Length)+lengthOverhead > int64(len(b)) {
		return Header{}, fmt.Errorf("%w: length %d runs past the %d bytes left", ErrCorrupt, h.Length, len(b)-lengthOverhead)
	}
	b = b[:h.Size()]
	if sum := checksum(b); sum != h.CRC {
		return Header{}, fmt.Errorf("%w: crc %#08x, computed %#08x", ErrCorrupt, h.CRC, sum)
	}
	if c := h.Codec(); !c.Valid() {
		return Header{}, fmt.Errorf("%w: unknown %v", ErrInvalid, c)
	}
	// Only the broker writes control batches (transaction markers); a
	// client sending one could forge a commit or abort.
	if h.Control() && !control {
		return Header{}, fmt.Errorf("%w: control batch from a client", ErrInvalid)
	}
	// The delete-horizon bit (KIP-534) is set by compaction alone: a
	// producer setting it would have its tombstones expire at a time it
	// chose instead of delete.retention.ms after their first compaction.
	if h.Attributes&AttrDeleteHorizon != 0 && !control {
		return Header{}, fmt.Errorf("%w: delete-horizon bit from a client", ErrInvalid)
	}
	if h.NumRecords <= 0 {
		return Header{}, fmt.Errorf("%w: record count %d", ErrInvalid, h.NumRecords)
	}
	// The broker assigns offsets from the header alone, so the header's
	// span must match the records it claims to hold.
	if int64(h.LastOffsetDelta) != int64(h.NumRecords)-1 {
		return Header{}, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrInvalid, h.LastOffsetDelta, h.NumRecords)
	}
	return h, nil
}
