package scaler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Processes runs broker processes on this machine: broker i (1-based) is
// the command Command(i) returns (called for every start; files it sets
// as Stdout or Stderr are closed once the child has started). Run supervises them: a broker that exits
// while it should be running is started again (a dead broker is replaced).
// Shrinking stops the highest ids with SIGTERM, which makes a broker drain
// (flush, hand off, deregister) and exit.
type Processes struct {
	Command func(id int) *exec.Cmd
	Max     int
	Log     *slog.Logger
	// StopTimeout bounds a broker's clean exit before SIGKILL.
	StopTimeout time.Duration

	mu    sync.Mutex
	want  int
	procs map[int]*proc
	wake  chan struct{}
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *Processes) init() {
	if p.procs == nil {
		p.procs, p.wake = map[int]*proc{}, make(chan struct{}, 1)
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
}

// Size returns the number of brokers asked for.
func (p *Processes) Size(context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.want, nil
}

// Scale sets the number of brokers; Run starts or stops processes.
// Stopped brokers are waited for before it returns, so the caller knows
// they have drained.
func (p *Processes) Scale(ctx context.Context, n int) error {
	if n < 0 || p.Max > 0 && n > p.Max {
		return fmt.Errorf("%w: %d (max %d)", ErrRange, n, p.Max)
	}
	p.mu.Lock()
	p.init()
	p.want = n
	var stopping []*proc
	for id, pr := range p.procs {
		if id > n {
			stopping = append(stopping, pr)
			delete(p.procs, id)
			pr.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	p.mu.Unlock()
	p.poke()
	for _, pr := range stopping {
		if err := p.await(ctx, pr); err != nil {
			return err
		}
	}
	return nil
}

func (p *Processes) await(ctx context.Context, pr *proc) error {
	t := time.NewTimer(max(p.StopTimeout, time.Second))
	defer t.Stop()
	select {
	case <-pr.done:
		return nil
	case <-t.C:
		pr.cmd.Process.Kill()
		<-pr.done
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Processes) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run keeps the asked-for brokers running until ctx ends, then stops them
// all (SIGTERM, SIGKILL after StopTimeout) and returns.
func (p *Processes) Run(ctx context.Context) {
	p.mu.Lock()
	p.init()
	p.mu.Unlock()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		p.reconcile()
		select {
		case <-ctx.Done():
			p.mu.Lock()
			all := p.procs
			p.procs = map[int]*proc{}
			p.mu.Unlock()
			for _, pr := range all {
				pr.cmd.Process.Signal(syscall.SIGTERM)
			}
			for _, pr := range all {
				p.await(context.Background(), pr)
			}
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// reconcile starts every wanted broker that is not running.
func (p *Processes) reconcile() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := 1; id <= p.want; id++ {
		if pr, ok := p.procs[id]; ok {
			select {
			case <-pr.done:
				p.Log.Warn("broker exited; starting a replacement", "id", id, "err", pr.cmd.ProcessState)
			default:
				continue
			}
		}
		cmd := p.Command(id)
		err := cmd.Start()
		// The child has its own copies of files given as its output;
		// ours would leak with every (re)start.
		for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
			if f, ok := w.(*os.File); ok && f != os.Stdout && f != os.Stderr {
				f.Close()
			}
		}
		if err != nil {
			p.Log.Error("starting broker failed", "id", id, "err", err)
			continue
		}
		pr := &proc{cmd: cmd, done: make(chan struct{})}
		go func() { cmd.Wait(); close(pr.done) }()
		p.procs[id] = pr
		p.Log.Info("broker started", "id", id, "pid", cmd.Process.Pid)
	}
}
