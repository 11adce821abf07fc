//go:build unix

package broker

import (
	"log/slog"
	"syscall"
)

// raiseFileLimit raises the process's open-file soft limit to its hard
// limit, so that a broker with many connections runs out of descriptors as
// late as the host allows. Go's runtime does the same at start on Linux
// since 1.19; doing it here too keeps the broker's behaviour independent of
// that, and logs the limit it serves with.
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("open-file limit unknown", "err", err)
		return
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("open-file limit not raised", "soft", lim.Cur, "hard", lim.Max, "err", err)
			return
		}
		lim = raised
	}
	log.Info("open-file limit", "soft", lim.Cur, "hard", lim.Max)
}
