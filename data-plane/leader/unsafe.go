package leader

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// EnvUnsafeNoDedupe names a test-only switch: set to "1" in a broker's
// environment, the broker's partitions stop recognising an idempotent
// producer's retry of a batch they already accepted and store it again
// (invariant 6 broken on purpose). It exists so that the fault-injection
// harness (internal/chaos) can prove its checker catches the duplicates
// this causes; it is never a setting. It is deliberately not a flag, so
// no configuration file, Helm value or EDDY_* flag variable can turn it
// on by accident, and a broker that honours it says so at error level.
const EnvUnsafeNoDedupe = "EDDY_TEST_UNSAFE_NO_DEDUPE"

// unsafeNoDedupe reads EnvUnsafeNoDedupe once, when a Manager opens.
func unsafeNoDedupe(log *slog.Logger) bool {
	if os.Getenv(EnvUnsafeNoDedupe) != "1" {
		return false
	}
	log.Error("UNSAFE: idempotent-producer deduplication is off (" + EnvUnsafeNoDedupe + "=1, for fault-injection tests only); retried batches will be stored twice")
	return true
}

// EnvCrashAfterPut names a test-only switch: a directory. While the file
// broker-<id> exists in it, broker <id>, having just PUT an object (a
// flush or an upload of inline data), kills itself with SIGKILL before it
// commits the object, as a crash between the two would: the object is then
// in the bucket with no row in Postgres, and garbage collection must find
// and delete it. Before dying the broker appends the object's key to
// broker-<id>.keys there, so the fault-injection harness (internal/chaos)
// can check the orphan goes. Like EnvUnsafeNoDedupe it is no flag, and a
// broker that honours it says so at error level.
const EnvCrashAfterPut = "EDDY_TEST_CRASH_AFTER_PUT"

// crashAfterPutTrigger reads EnvCrashAfterPut once, when a Manager opens.
func crashAfterPutTrigger(log *slog.Logger, broker int32) string {
	dir := os.Getenv(EnvCrashAfterPut)
	if dir == "" {
		return ""
	}
	path := filepath.Join(dir, fmt.Sprintf("broker-%d", broker))
	log.Error("UNSAFE: this broker kills itself between a PUT and its commit while " + path + " exists (" + EnvCrashAfterPut + ", for fault-injection tests only)")
	return path
}

// afterPut runs between a PUT and the commit of its object: with the
// test switch armed, it crashes the process there.
func (m *Manager) afterPut(key string) {
	if m.crashAt == "" {
		return
	}
	if _, err := os.Stat(m.crashAt); err != nil {
		return
	}
	if f, err := os.OpenFile(m.crashAt+".keys", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintln(f, key)
		f.Sync()
		f.Close()
	}
	m.log.Error("UNSAFE: crashing between the PUT of an object and its commit", "key", key)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill() // SIGKILL: no deferred function, no shutdown
	}
	select {} // Kill does not return control for long
}
