// Package chaos is Eddy's fault-injection harness, after Jepsen: it runs
// a real multi-process cluster on loopback (StartCluster: a private
// Postgres, an S3 server behind a fault Proxy, control planes and
// brokers from internal/stack), hurts it with a nemesis on a schedule
// drawn from a seed (Plan), drives a Workload that records every
// acknowledgement, read and confirmed commit in a History, reads the
// topic back once the faults are healed (ReadBack) and judges the history
// against it (Check). Execute does all of it and writes a report
// (Run.WriteReport: markdown and a PNG chart). docs/testing.md describes
// the faults, the invariants checked and `make soak`.
//
// Contracts:
//
//   - Plan is a pure function of its arguments: a seed replays the same
//     faults at the same offsets from the start of the faults phase; what
//     the processes do meanwhile is up to the scheduler.
//   - Check never fails a run for what Kafka allows: acks=1 losses are
//     counted, duplicates of acks=1 (non-idempotent) records and
//     re-deliveries after commits that were not confirmed are accepted.
//   - Execute fails its test only when the harness cannot work (a
//     process that does not come back, a log that cannot be read back);
//     the caller judges Run.Result, so a test may also expect violations
//     (TestChaosCatchesDuplicates).
//
// History, Timeline and Proxy are safe for concurrent use; a Cluster's
// process faults (Stack.Kill, Restart ...) may fail the test and so run
// on the test's goroutine.
package chaos
