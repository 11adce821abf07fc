package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Decoding limits, as Apache Kafka enforces them: a length that no real
// request needs is refused before anything is allocated or looped over
// for it.
const (
	maxArrayLen     = 1_000_000
	maxTaggedFields = 10_000
)

var errAbsurdLength = errors.New("absurd length")

// skipTags walks a tagged-field section. kmsg.SkipTags loops as many times
// as the section announces even after the input ran out (2^32 iterations
// for a five-byte count); here a count over maxTaggedFields, or more than
// the bytes left could hold (a tag takes at least two), is refused first.
func skipTags(r *kbin.Reader) error {
	n := r.Uvarint()
	if err := r.Complete(); err != nil {
		return err
	}
	if n > maxTaggedFields || int(n) > len(r.Src)/2 {
		return fmt.Errorf("%w: %d tagged fields in %d bytes", errAbsurdLength, n, len(r.Src))
	}
	for ; n > 0; n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
		if err := r.Complete(); err != nil {
			return err
		}
	}
	return nil
}
