//go:build !unix

package broker

import "log/slog"

func raiseFileLimit(*slog.Logger) {}
