package group

import (
	"container/heap"
	"time"
)

// timer is a deadline owned by the loop. All of a coordinator's deadlines
// sit in one heap served by one time.Timer, so there is no goroutine or
// runtime timer per member, and stopping a deadline is a heap removal that
// cannot race with it firing: fn only ever runs on the loop.
type timer struct {
	when time.Time
	fn   func()
	idx  int // position in the heap; -1 while disarmed
}

func newTimer(fn func()) *timer {
	return &timer{fn: fn, idx: -1}
}

// arm (re)schedules t to fire after d.
func (c *Coordinator) arm(t *timer, d time.Duration) {
	t.when = time.Now().Add(d)
	if t.idx >= 0 {
		heap.Fix(&c.timers, t.idx)
		return
	}
	heap.Push(&c.timers, t)
}

// disarm cancels t if it is scheduled.
func (c *Coordinator) disarm(t *timer) {
	if t != nil && t.idx >= 0 {
		heap.Remove(&c.timers, t.idx)
	}
}

// fireDue runs every timer due at now. A callback may arm or disarm timers,
// including ones already popped.
func (c *Coordinator) fireDue(now time.Time) {
	for len(c.timers) > 0 && !c.timers[0].when.After(now) {
		t := heap.Pop(&c.timers).(*timer)
		t.fn()
	}
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.idx = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.idx = -1
	*h = old[:len(old)-1]
	return t
}
