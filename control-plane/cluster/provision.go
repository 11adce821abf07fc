// Package cluster runs the lifecycle of virtual clusters. A cluster is a
// namespace, not a process (every broker serves every cluster), so
// provisioning is quick: the Provisioner takes each cluster created in
// status provisioning, prepares what it needs and marks it ready. Today
// there is nothing to prepare beyond the rows REST already wrote; the
// status exists so clients wait on one documented transition when DNS,
// certificates or ACL seeding are added here.
package cluster

import (
	"context"
	"log/slog"
	"time"
)

// provisionStore is the part of internal/store the provisioner uses.
type provisionStore interface {
	MarkClustersReady(ctx context.Context) ([]string, error)
	Listen(ctx context.Context, channel string, fn func(wait func(context.Context) (string, error)) error) error
}

// Provisioner moves new clusters from provisioning to ready. It wakes on
// NOTIFY eddy_provision (sent when a cluster is created) and polls every
// Interval in case a notification was missed.
type Provisioner struct {
	Interval time.Duration
	st       provisionStore
	log      *slog.Logger
}

// NewProvisioner returns a provisioner polling every interval (default 1s).
func NewProvisioner(st provisionStore, interval time.Duration, log *slog.Logger) *Provisioner {
	if interval <= 0 {
		interval = time.Second
	}
	return &Provisioner{Interval: interval, st: st, log: log}
}

// Run provisions until ctx ends.
func (p *Provisioner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := p.st.Listen(ctx, "eddy_provision", func(wait func(context.Context) (string, error)) error {
			for ctx.Err() == nil {
				p.round(ctx)
				wctx, cancel := context.WithTimeout(ctx, p.Interval)
				_, err := wait(wctx)
				cancel()
				if err != nil && wctx.Err() == nil {
					return err // the connection broke: listen again
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			p.log.Warn("provisioner: listen failed; retrying", "err", err)
			p.round(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(p.Interval):
			}
		}
	}
}

func (p *Provisioner) round(ctx context.Context) {
	ids, err := p.st.MarkClustersReady(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("provisioner: round failed", "err", err)
		}
		return
	}
	for _, id := range ids {
		p.log.Info("virtual cluster ready", "cluster", id)
	}
}
