package compact

import "time"

// SetClock makes c read the time from now, so that tests can pass a
// delete horizon without waiting for it.
func SetClock(c *Compactor, now func() time.Time) { c.now = now }
