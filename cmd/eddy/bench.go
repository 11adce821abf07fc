package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/bench"
	"github.com/spf13/cobra"
)

type benchConfig struct {
	bootstrap   []string
	metrics     []string
	databaseURL string
	startStack  bool
	brokers     int
	stackDir    string
	stackBin    string
	standard    bool
	only        []string
	scale       float64
	noisyMBps   int32
	noisyInProc bool
	scaleParts  int
	scaleCl     int
	scaleQuiet  time.Duration
	scaleRuns   []string
	workload    bench.Workload
	peer        bool
	limits      bool
	limitsDir   string
	output      string
	jsonFile    string
	mdFile      string
	chartsDir   string
	s3          bool
}

func newBenchCmd() *cobra.Command {
	var cfg benchConfig
	cmd := &cobra.Command{
		Use: "bench", Example: "  eddy bench --start-stack --standard --markdown docs/benchmarks.md\n" +
			"  eddy bench --brokers 1 --peer=false -o json",
		Short: "Measure Eddy side by side with an in-memory Kafka (kfake) and the machine's limits",
		Long: `Runs OpenMessaging-style workloads with franz-go against Eddy and, in the
same run, against franz-go's in-memory kfake started here, and measures loopback
TCP and fsync'd disk throughput, so every figure is also a ratio.

Either point it at running brokers (--bootstrap, with --metrics and
--database-url for the cost figures; for make dev:
  --bootstrap 127.0.0.1:9092 --metrics http://127.0.0.1:9193/metrics,http://127.0.0.1:9194/metrics,http://127.0.0.1:9195/metrics)
or let it start a private stack (--start-stack runs "eddy dev" on free ports in
a temporary directory). --standard runs the standard set (--only some of it,
by name); otherwise the workload flags define one workload. Progress goes to
stderr, results to stdout as a table (-o text), JSON (-o json) or Markdown
(-o markdown).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&cfg.bootstrap, "bootstrap", nil, "Eddy brokers, host:port,...")
	fs.StringSliceVar(&cfg.metrics, "metrics", nil, "brokers' /metrics URLs, for the cost figures")
	fs.StringVar(&cfg.databaseURL, "database-url", "", "Eddy's Postgres, for transactions/s (optional)")
	fs.BoolVar(&cfg.startStack, "start-stack", false, `start "eddy dev" on free ports in a temporary directory and measure it`)
	fs.IntVar(&cfg.brokers, "brokers", 3, "brokers of the --start-stack stack (and of the kfake peer)")
	fs.StringVar(&cfg.stackDir, "stack-dir", "", "directory for --start-stack (default: a temporary one, removed afterwards)")
	fs.StringVar(&cfg.stackBin, "stack-binary", "", "the eddy binary --start-stack runs (default: this one), to measure another build in the same conditions")
	fs.BoolVar(&cfg.standard, "standard", false, "run the standard workload set instead of the one the flags define")
	fs.StringSliceVar(&cfg.only, "only", nil, "with --standard, run only these of its workloads, by name (e.g. "+bench.TxnName+","+bench.NoisyName+")")
	fs.Float64Var(&cfg.scale, "scale", 1, "multiply the standard set's durations")
	fs.Int32Var(&cfg.noisyMBps, "noisy-ingress-mbps", bench.StandardNoisy(1).NoisyIngressMBps, "ingress limit of the noisy-neighbour scenario's tenant A, MB/s over the pool (0: a new cluster's default)")
	fs.BoolVar(&cfg.noisyInProc, "noisy-in-process", false, "run the noisy-neighbour scenario's tenant A in the bench's process rather than a worker process (its clients then take CPU from tenant B's)")
	fs.IntVar(&cfg.scaleParts, "scale-partitions", 0, "run the scale scenario instead of workloads: create this many partitions on the pool, then measure the idle pool and Metadata (use a stack of its own: it leaves them behind)")
	fs.IntVar(&cfg.scaleCl, "scale-clusters", 1, "virtual clusters the scale scenario spreads its partitions over")
	fs.DurationVar(&cfg.scaleQuiet, "scale-quiet", bench.DefaultScale(1, 1).Quiet, "the scale scenario's idle window")
	fs.StringSliceVar(&cfg.scaleRuns, "scale-runs", nil, "with --start-stack, then run the scale scenario once per PARTITIONS[/CLUSTERS] given, each on a stack of its own (make bench: 100,10000,10000/1000)")
	cfg.workload.RegisterFlags(fs)
	fs.BoolVar(&cfg.peer, "peer", true, "run every workload against kfake too")
	fs.BoolVar(&cfg.limits, "limits", true, "measure loopback TCP and fsync'd disk throughput")
	fs.StringVar(&cfg.limitsDir, "limits-dir", "", "directory of the disk test (default: the stack's directory or the temp dir)")
	fs.StringVarP(&cfg.output, "output", "o", "text", "stdout format: text, json or markdown")
	fs.StringVar(&cfg.jsonFile, "json", "", "also write the JSON report to this file")
	fs.StringVar(&cfg.mdFile, "markdown", "", "also write the Markdown report to this file (charts go beside it)")
	fs.StringVar(&cfg.chartsDir, "charts", "", "write PNG charts to this directory (default: the --markdown file's)")
	fs.BoolVar(&cfg.s3, "s3", false, "with --start-stack, then run the S3 workloads (--standard: "+strings.Join(workloadNames(bench.StandardS3(1)), ", ")+
		"; otherwise the flags' workload) on a second stack whose brokers store objects in a moto_server started here, behind a latency injector modelling "+bench.S3Standard().String()+" (needs moto_server on $PATH)")
	return cmd
}

func runBench(cmd *cobra.Command, cfg benchConfig) error {
	ctx := cmd.Context()
	switch cfg.output {
	case "text", "json", "markdown":
	default:
		return fmt.Errorf("--output must be text, json or markdown, not %q", cfg.output)
	}
	bc := bench.Config{Bootstrap: cfg.bootstrap, Metrics: cfg.metrics, DatabaseURL: cfg.databaseURL,
		Peer: cfg.peer, Limits: cfg.limits, LimitsDir: cfg.limitsDir, Progress: progressPrinter(os.Stderr)}
	var s3 []bench.Workload
	switch {
	case cfg.scaleParts > 0:
		if cfg.standard || len(cfg.only) > 0 || cfg.s3 {
			return errors.New("--scale-partitions runs the scale scenario alone: not with --standard, --only or --s3")
		}
		x := bench.DefaultScale(cfg.scaleParts, cfg.scaleCl)
		x.Quiet = cfg.scaleQuiet
		bc.Scale = &x
	case cfg.standard:
		set := bench.StandardSet(cfg.scale)
		if len(cfg.only) > 0 {
			var err error
			if set, err = set.Only(cfg.only); err != nil {
				return err
			}
		}
		if set.Noisy != nil {
			set.Noisy.NoisyIngressMBps, set.Noisy.NoisyProcess = cfg.noisyMBps, !cfg.noisyInProc
		}
		bc.Workloads, bc.Txn, bc.Share, bc.Noisy = set.Workloads, set.Txn, set.Share, set.Noisy
		// --only naming an S3 workload asks for the S3 run.
		if cfg.s3 || len(cfg.only) > 0 {
			s3 = set.S3
		}
	default:
		if len(cfg.only) > 0 {
			return errors.New("--only selects from the standard set: use it with --standard")
		}
		bc.Workloads = []bench.Workload{cfg.workload}
		if cfg.s3 {
			w := cfg.workload
			w.Name = bench.S3Prefix + w.Name
			s3 = []bench.Workload{w}
		}
	}
	if cfg.startStack && len(cfg.bootstrap) > 0 {
		return errors.New("--start-stack and --bootstrap exclude each other")
	}
	if len(s3) > 0 && !cfg.startStack {
		return errors.New("the S3 run (--s3) starts its own stack: use it with --start-stack")
	}
	scales, err := parseScaleRuns(cfg.scaleRuns, cfg.scaleQuiet)
	if err != nil {
		return err
	}
	if len(scales) > 0 && (!cfg.startStack || cfg.scaleParts > 0) {
		return errors.New("--scale-runs starts a stack per run: use it with --start-stack, and not with --scale-partitions")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bc.Worker = []string{self, "bench-worker"}
	var rep *bench.Report
	if len(bc.Workloads) > 0 || bc.Txn != nil || bc.Share != nil || bc.Noisy != nil || bc.Scale != nil {
		if rep, _, err = runBenchStack(ctx, cfg, bc, self, false); err != nil {
			return err
		}
	}
	if len(s3) > 0 {
		bs := bc
		bs.Workloads, bs.Txn, bs.Share, bs.Noisy, bs.Peer, bs.Limits = s3, nil, nil, nil, false, false
		s3rep, injected, err := runBenchStack(ctx, cfg, bs, self, true)
		if err != nil {
			return err
		}
		if rep == nil { // only the S3 run: its report, with its runs added once
			only := *s3rep
			only.Runs = nil
			rep = &only
		}
		rep.AddS3(s3rep, *injected)
	}
	for _, x := range scales {
		// A pool of its own per run (the scenario leaves its clusters
		// behind), under --stack-dir when one is given.
		sc := cfg
		if sc.stackDir != "" {
			tmp, err := os.MkdirTemp(sc.stackDir, "eddy-bench-scale-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			sc.stackDir = tmp
		}
		bs := bench.Config{Progress: bc.Progress, Worker: bc.Worker, Scale: &x}
		srep, _, err := runBenchStack(ctx, sc, bs, self, false)
		if err != nil {
			return err
		}
		if rep == nil {
			only := *srep
			only.Scale = nil
			rep = &only
		}
		rep.AddScale(srep)
	}
	rep.Command = "eddy " + strings.Join(os.Args[1:], " ")
	fmt.Fprintln(os.Stderr)

	if cfg.jsonFile != "" {
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonFile, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	chartsDir := cfg.chartsDir
	if chartsDir == "" && cfg.mdFile != "" {
		chartsDir = filepath.Dir(cfg.mdFile)
	}
	var charts []string
	if chartsDir != "" {
		if err := os.MkdirAll(chartsDir, 0o755); err != nil {
			return err
		}
		if charts, err = rep.WriteCharts(chartsDir); err != nil {
			return err
		}
		// Markdown links are relative to the Markdown file.
		if cfg.mdFile != "" {
			for i, c := range charts {
				if rel, err := filepath.Rel(filepath.Dir(cfg.mdFile), filepath.Join(chartsDir, c)); err == nil {
					charts[i] = rel
				}
			}
		}
	}
	if cfg.mdFile != "" {
		var buf bytes.Buffer
		rep.WriteMarkdown(&buf, charts)
		if err := os.WriteFile(cfg.mdFile, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	switch cfg.output {
	case "json":
		return rep.WriteJSON(os.Stdout)
	case "markdown":
		rep.WriteMarkdown(os.Stdout, charts)
	default:
		rep.WriteText(os.Stdout)
	}
	return nil
}

// runBenchStack runs bc against a stack it starts with --start-stack (one
// on S3 behind the latency injector if s3, whose injected delays it
// returns), stopping it before it returns, or against the brokers bc
// names.
func runBenchStack(ctx context.Context, cfg benchConfig, bc bench.Config, self string, s3 bool) (*bench.Report, *bench.ProxyStats, error) {
	if !cfg.startStack {
		rep, err := bench.Run(ctx, bc)
		return rep, nil, err
	}
	dir := cfg.stackDir
	if dir == "" || s3 {
		tmp, err := os.MkdirTemp(cfg.stackDir, "eddy-bench-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// Postgres runs as its own user when we are root; it must reach dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, nil, err
	}
	// --stack-binary measures another build in the same conditions.
	bin := self
	if cfg.stackBin != "" {
		bin = cfg.stackBin
	}
	var (
		dev  *bench.Dev
		stop func() error
		s3d  *bench.S3Dev
		err  error
	)
	if s3 {
		bc.Progress("starting moto_server, the S3 latency injector and eddy dev in " + dir)
		if s3d, err = bench.StartS3Dev(ctx, bin, dir, cfg.brokers, bench.S3Standard()); err != nil {
			return nil, nil, err
		}
		dev, stop = s3d.Dev, s3d.Stop
	} else {
		bc.Progress("starting eddy dev in " + dir)
		if dev, err = bench.StartDev(ctx, bin, dir, cfg.brokers); err != nil {
			return nil, nil, err
		}
		stop = dev.Stop
	}
	defer stop()
	bc.Bootstrap, bc.Metrics, bc.DatabaseURL = dev.Bootstrap, dev.Metrics, dev.DatabaseURL
	if bc.LimitsDir == "" {
		bc.LimitsDir = dir
	}
	rep, err := bench.Run(ctx, bc)
	if err != nil || s3d == nil {
		return rep, nil, err
	}
	injected := s3d.Proxy.Stats()
	return rep, &injected, nil
}

// parseScaleRuns reads --scale-runs: PARTITIONS or PARTITIONS/CLUSTERS.
func parseScaleRuns(runs []string, quiet time.Duration) ([]bench.Scale, error) {
	var out []bench.Scale
	for _, r := range runs {
		ps, cs, per := strings.Cut(r, "/")
		p, err := strconv.Atoi(ps)
		c := 1
		if err == nil && per {
			c, err = strconv.Atoi(cs)
		}
		if err != nil {
			return nil, fmt.Errorf("--scale-runs: %q is not PARTITIONS or PARTITIONS/CLUSTERS", r)
		}
		x := bench.DefaultScale(p, c)
		x.Quiet = quiet
		if err := x.Validate(); err != nil {
			return nil, fmt.Errorf("--scale-runs %s: %w", r, err)
		}
		out = append(out, x)
	}
	return out, nil
}

func workloadNames(ws []bench.Workload) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

// progressPrinter overwrites one line on a terminal and prints one line
// per update otherwise (logs, make).
func progressPrinter(w *os.File) func(string) {
	tty := false
	if st, err := w.Stat(); err == nil {
		tty = st.Mode()&os.ModeCharDevice != 0
	}
	return func(line string) {
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
			return
		}
		io.WriteString(w, line+"\n")
	}
}

// newBenchWorkerCmd is the child process eddy bench runs the noisy
// neighbour's producers in (bench.Worker): a job on stdin, the result on
// stdout, progress on stderr.
func newBenchWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "bench-worker",
		Short:  "Run one produce phase for eddy bench (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.Worker(cmd.Context(), os.Stdin, os.Stdout, func(line string) { fmt.Fprintln(os.Stderr, line) })
		},
	}
}
