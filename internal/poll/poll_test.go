package poll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	err := Wait(context.Background(), func() error {
		if n++; n < 3 {
			return fmt.Errorf("check %d", n)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Wait: %v after %d checks, want nil after 3", err, n)
	}
}

func TestWaitSaysWhatItLastSaw(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*Interval)
	defer cancel()
	n := 0
	err := Wait(ctx, func() error { n++; return fmt.Errorf("leader is broker %d", n) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v, want DeadlineExceeded", err)
	}
	if want := fmt.Sprintf("leader is broker %d", n); !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("Wait past its deadline: %q, want it to end with the last observation %q", err, want)
	}
}

func TestTrue(t *testing.T) {
	start := time.Now()
	if err := Wait(context.Background(), True(func() bool { return time.Since(start) > Interval })); err != nil {
		t.Fatal(err)
	}
	if err := True(func() bool { return false })(); !errors.Is(err, ErrNotYet) {
		t.Fatalf("a false condition: %v, want ErrNotYet", err)
	}
}
