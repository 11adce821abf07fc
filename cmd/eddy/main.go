// Command eddy is Eddy's single binary: `eddy dev` runs everything on one
// machine, `eddy broker`, `eddy control-plane` and `eddy migrate` run the
// pieces separately. Every flag can also be set as EDDY_<FLAG_NAME>.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eddy-streams/eddy/internal/flagenv"
	"github.com/eddy-streams/eddy/internal/service"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eddy:", err)
		os.Exit(1)
	}
}

type logFlags struct {
	level  string
	format string
}

func newRoot() *cobra.Command {
	var lf logFlags
	root := &cobra.Command{
		Use:           "eddy",
		Short:         "Eddy: serverless Kafka-compatible streaming on object storage",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagenv.Apply(cmd.Flags(), "EDDY"); err != nil {
				return err
			}
			return setupLogging(lf)
		},
	}
	root.Version = versionString()
	root.SetVersionTemplate("eddy {{.Version}}\n")
	root.PersistentFlags().StringVar(&lf.level, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&lf.format, "log-format", "text", "text or json")
	root.AddCommand(newDevCmd(), newBrokerCmd(), newControlPlaneCmd(), newMigrateCmd(), newBenchCmd(), newBenchWorkerCmd())
	root.AddCommand(newFsckCmd())
	root.AddCommand(tenantCommands()...)
	return root
}

func setupLogging(lf logFlags) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(lf.level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch lf.format {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", lf.format)
	}
	return nil
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// addMetrics adds the /metrics server on addr to l ("" adds nothing). It
// also answers the probes: /livez while the process runs, /readyz while
// ready returns nil. It is added first so that it stops last: a draining
// process stays live. With profiles it also serves Go's profiles under
// /debug/pprof/.
func addMetrics(l *service.List, addr string, reg *prometheus.Registry, profiles bool, ready func(context.Context) error) {
	if addr != "" {
		h := adminHandler(reg, ready)
		if profiles {
			h = withPprof(h)
		}
		l.Add("metrics", service.Func(func(ctx context.Context) error { return runMetrics(ctx, addr, h) }))
	}
}

// adminHandler serves /metrics, /livez and /readyz. A probe's body names
// the reason it fails (never a secret: ready's errors name states and the
// database's reachability, not its URL).
func adminHandler(reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// withPprof serves net/http/pprof's handlers under /debug/pprof/ and
// everything else from h. The handlers are mounted on a mux of our own
// rather than through the package's side effect on http.DefaultServeMux,
// which no server of ours serves.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// runMetrics serves h on addr until ctx ends. A server that cannot listen
// is logged and the process goes on: metrics are not worth stopping a
// broker or a control plane for (its probes then fail, which Kubernetes
// reports).
func runMetrics(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-errc
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("metrics server stopped", "addr", addr, "err", err)
		}
		<-ctx.Done()
	}
	return nil
}
