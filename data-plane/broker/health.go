package broker

import (
	"context"
	"errors"
)

// Reasons Ready gives for a broker that should not get traffic yet (or
// any more). Liveness is not the broker's to judge: a process that can
// answer is alive, draining or not.
var (
	ErrNotRegistered = errors.New("broker: session not registered")
	ErrNotLoaded     = errors.New("broker: partitions not loaded")
	ErrDraining      = errors.New("broker: draining")
	// ErrDatabase carries no detail: a probe's answer is no place for
	// connection strings.
	ErrDatabase = errors.New("broker: the database does not answer")
)

// Ready reports whether the broker should receive traffic: its session is
// registered, the partitions placed on it when it last read the routing
// view are loaded, it is not draining, and Postgres answers. It is safe to
// call concurrently with everything, and before or after Run.
func (s *Server) Ready(ctx context.Context) error {
	switch {
	case s.session.Load() == 0:
		return ErrNotRegistered
	case !s.loaded.Load():
		return ErrNotLoaded
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return ErrDraining
	}
	if s.store.Ping(ctx) != nil {
		return ErrDatabase
	}
	return nil
}
