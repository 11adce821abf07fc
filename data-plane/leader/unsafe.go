package leader

import (
	"log/slog"
	"os"
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
