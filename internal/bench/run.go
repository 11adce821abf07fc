package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is the outcome of one Run; it marshals to the JSON output.
type Report struct {
	Command string         `json:"command,omitempty"`
	Started time.Time      `json:"started"`
	Seconds float64        `json:"seconds"`
	Machine Machine        `json:"machine"`
	Limits  *Limits        `json:"limits,omitempty"`
	Brokers int            `json:"eddy_brokers"`
	Runs    []Comparison   `json:"runs"`
	Txn     *TxnComparison `json:"transactions,omitempty"`
	Share   *ShareResult   `json:"share_groups,omitempty"`
	Noisy   *NoisyResult   `json:"noisy_neighbour,omitempty"`
	// S3 is the latency the S3 run's injector added; the S3 run's
	// workloads are in Runs, named with S3Prefix.
	S3 *ProxyStats `json:"s3_latency,omitempty"`
	// Scale holds the scale scenario's runs, each on a pool of its own
	// (AddScale), in the order they ran.
	Scale []ScaleResult `json:"scale,omitempty"`
}

// AddS3 appends the runs of s3, a report of the S3 stack, with the
// delays its latency injector added.
func (r *Report) AddS3(s3 *Report, injected ProxyStats) {
	r.Runs = append(r.Runs, s3.Runs...)
	r.S3 = &injected
	r.Seconds += s3.Seconds
	r.Machine.LoadEnd = s3.Machine.LoadEnd
}

// AddScale appends the scale runs of o, a report of a stack of their own.
func (r *Report) AddScale(o *Report) {
	r.Scale = append(r.Scale, o.Scale...)
	r.Seconds += o.Seconds
	r.Machine.LoadEnd = o.Machine.LoadEnd
}

// Machine describes where the run happened.
type Machine struct {
	NProc     int     `json:"nproc"`
	CPU       string  `json:"cpu"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	LoadStart float64 `json:"loadavg_start"` // 1-minute load average
	LoadEnd   float64 `json:"loadavg_end"`
}

// Comparison is one workload on Eddy and on the peer, with the ratios.
type Comparison struct {
	Workload Workload `json:"workload"`
	Eddy     *Result  `json:"eddy"`
	Peer     *Result  `json:"kfake,omitempty"`
	Ratios   *Ratios  `json:"ratios,omitempty"`
	// Eddy's produce throughput over the machine's limits.
	OfLoopback float64 `json:"eddy_fraction_of_loopback,omitempty"`
	OfDisk     float64 `json:"eddy_fraction_of_disk_fsync,omitempty"`
}

// Ratios are Eddy's figures over kfake's: above 1 means Eddy is faster for
// throughput, slower for latency.
type Ratios struct {
	Throughput float64 `json:"produce_throughput"`
	P50        float64 `json:"produce_p50"`
	P99        float64 `json:"produce_p99"`
	P999       float64 `json:"produce_p999"`
	E2EP50     float64 `json:"end_to_end_p50,omitempty"`
	E2EP99     float64 `json:"end_to_end_p99,omitempty"`
	ColdRead   float64 `json:"consume_cold,omitempty"`
	HotRead    float64 `json:"consume_hot,omitempty"`
}

// Run runs every workload against Eddy and then, if cfg.Peer, against a
// kfake cluster it starts; it measures the limits first.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	rep := &Report{Started: time.Now().UTC(), Machine: machine(), Brokers: len(cfg.Bootstrap)}
	limitTime := cfg.LimitTime
	if limitTime <= 0 {
		limitTime = 3 * time.Second
	}
	if cfg.Limits {
		lim := &Limits{LoopbackMBps: map[int]float64{}, DiskDir: cfg.LimitsDir}
		if lim.DiskDir == "" {
			lim.DiskDir = os.TempDir()
		}
		for _, w := range cfg.Workloads {
			if _, ok := lim.LoopbackMBps[w.RecordSize]; ok {
				continue
			}
			progress(fmt.Sprintf("limits: loopback TCP, %d B writes", w.RecordSize))
			v, err := measureLoopback(ctx, w.RecordSize, limitTime)
			if err != nil {
				return nil, fmt.Errorf("bench: loopback: %w", err)
			}
			lim.LoopbackMBps[w.RecordSize] = v
		}
		progress("limits: fsync'd sequential writes in " + lim.DiskDir)
		v, err := measureDisk(ctx, lim.DiskDir, limitTime)
		if err != nil {
			return nil, fmt.Errorf("bench: disk: %w", err)
		}
		lim.DiskMBps = v
		rep.Limits = lim
	}

	eddy := target{name: "eddy", seeds: cfg.Bootstrap, metrics: cfg.Metrics, dbURL: cfg.DatabaseURL}
	var peer *target
	if cfg.Peer {
		kf, err := startPeer(len(cfg.Bootstrap))
		if err != nil {
			return nil, fmt.Errorf("bench: start kfake: %w", err)
		}
		defer kf.Close()
		peer = &target{name: "kfake", seeds: kf.ListenAddrs()}
	}
	// Workload by workload, Eddy then the peer (onBoth).
	for _, w := range cfg.Workloads {
		c := Comparison{Workload: w}
		var err error
		c.Eddy, c.Peer, err = onBoth(ctx, eddy, peer, func(ctx context.Context, tg target) (*Result, error) {
			return runWorkload(ctx, tg, w, progress)
		})
		if err != nil {
			return nil, fmt.Errorf("bench: %s %w", w.Name, err)
		}
		if c.Peer != nil {
			c.Ratios = ratios(c.Eddy, c.Peer)
		}
		if rep.Limits != nil {
			c.OfLoopback = div(c.Eddy.MBPerSec, rep.Limits.LoopbackMBps[w.RecordSize])
			c.OfDisk = div(c.Eddy.MBPerSec, rep.Limits.DiskMBps)
		}
		rep.Runs = append(rep.Runs, c)
	}
	if x := cfg.Txn; x != nil {
		e, p, err := onBoth(ctx, eddy, peer, func(ctx context.Context, tg target) (*TxnResult, error) {
			return runTxn(ctx, tg, *x, progress)
		})
		if err != nil {
			return nil, fmt.Errorf("bench: %s %w", x.Name, err)
		}
		rep.Txn = compareTxn(*x, e, p)
	}
	if x := cfg.Share; x != nil {
		e, p, err := onBoth(ctx, eddy, peer, func(ctx context.Context, tg target) ([]ShareRun, error) {
			return runShare(ctx, tg, *x, progress)
		})
		if err != nil {
			return nil, fmt.Errorf("bench: %s %w", x.Name, err)
		}
		rep.Share = &ShareResult{Scenario: *x, Eddy: e, Peer: p}
	}
	if cfg.Noisy != nil {
		var err error
		if rep.Noisy, err = runNoisy(ctx, eddy, *cfg.Noisy, cfg.Worker, progress); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", cfg.Noisy.Name, err)
		}
	}
	if cfg.Scale != nil {
		res, err := runScale(ctx, eddy, *cfg.Scale, progress)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", cfg.Scale.Name, err)
		}
		rep.Scale = append(rep.Scale, *res)
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Machine.LoadEnd = loadAvg()
	return rep, nil
}

// onBoth runs a scenario on Eddy and then, when there is one, on the peer
// (p is then the zero T), one after the other so both see the same
// machine weather as closely as possible. Its error names the target.
func onBoth[T any](ctx context.Context, eddy target, peer *target, run func(context.Context, target) (T, error)) (e, p T, err error) {
	if e, err = run(ctx, eddy); err != nil {
		return e, p, fmt.Errorf("on %s: %w", eddy.name, err)
	}
	if peer != nil {
		if p, err = run(ctx, *peer); err != nil {
			return e, p, fmt.Errorf("on %s: %w", peer.name, err)
		}
	}
	return e, p, nil
}

func ratios(e, p *Result) *Ratios {
	r := &Ratios{
		Throughput: div(e.MBPerSec, p.MBPerSec),
		P50:        div(e.ProduceLatency.P50, p.ProduceLatency.P50),
		P99:        div(e.ProduceLatency.P99, p.ProduceLatency.P99),
		P999:       div(e.ProduceLatency.P999, p.ProduceLatency.P999),
	}
	if e.EndToEnd != nil && p.EndToEnd != nil {
		r.E2EP50 = div(e.EndToEnd.P50, p.EndToEnd.P50)
		r.E2EP99 = div(e.EndToEnd.P99, p.EndToEnd.P99)
	}
	if e.Cold != nil && p.Cold != nil {
		r.ColdRead = div(e.Cold.MBPerSec, p.Cold.MBPerSec)
	}
	if e.Hot != nil && p.Hot != nil {
		r.HotRead = div(e.Hot.MBPerSec, p.Hot.MBPerSec)
	}
	return r
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func machine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%f", &kb)
			}
		}
		m.MemoryGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() float64 {
	var v float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f", &v)
	}
	return v
}
