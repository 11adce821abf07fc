package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/eddy-streams/eddy/internal/freeport"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dev is an `eddy dev` child process on free ports, started for a run
// (`eddy bench --start-stack`): a private Postgres, the control plane and
// brokers with the filesystem object store, all under Dir.
type Dev struct {
	Dir         string
	Bootstrap   []string
	Metrics     []string // brokers' /metrics URLs
	DatabaseURL string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

var pgURLRe = regexp.MustCompile(`Postgres \((postgres://[^)\s]+)\)`)

// StartDev runs `bin dev` with n brokers in dir and waits until it is
// ready. Stop it with Stop.
func StartDev(ctx context.Context, bin, dir string, n int) (*Dev, error) {
	base, pgPort, err := devPorts(n)
	if err != nil {
		return nil, err
	}
	d := &Dev{Dir: dir, log: filepath.Join(dir, "dev.log"), done: make(chan struct{})}
	lf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	// Every port is picked, the REST API's too (its default, 8080, is what
	// a `make dev` running alongside uses).
	cmd := exec.Command(bin, "dev", "--anonymous", "--data-dir", dir, "--brokers", strconv.Itoa(n),
		"--port", strconv.Itoa(base), "--pg-port", strconv.Itoa(pgPort), "--api-port", strconv.Itoa(base+201))
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// eddy dev stops its brokers and Postgres on SIGTERM, also when the
	// bench dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d.cmd = cmd
	ready := make(chan string, 1)
	go func() {
		// Copy stdout to the log, noting the database URL and "ready".
		sc := bufio.NewScanner(out)
		var url string
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, line)
			if m := pgURLRe.FindStringSubmatch(line); m != nil {
				url = m[1]
			}
			if line == "ready" {
				ready <- url
			}
		}
		io.Copy(io.Discard, out)
		d.err = cmd.Wait()
		close(d.done)
	}()
	select {
	case url := <-ready:
		d.DatabaseURL = url
	case <-d.done:
		return nil, fmt.Errorf("bench: eddy dev exited during start-up: %v\n%s", d.err, tailFile(d.log))
	case <-time.After(3 * time.Minute):
		d.Stop()
		return nil, fmt.Errorf("bench: eddy dev not ready after 3 minutes\n%s", tailFile(d.log))
	case <-ctx.Done():
		d.Stop()
		return nil, ctx.Err()
	}
	for i := range n {
		d.Bootstrap = append(d.Bootstrap, net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
		d.Metrics = append(d.Metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", base+100+1+i))
	}
	return d, nil
}

// Stop sends SIGTERM and waits for eddy dev to stop its brokers and
// Postgres (SIGKILL after a minute).
func (d *Dev) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		d.cmd.Process.Kill()
		<-d.done
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) && ee.ExitCode() == -1 {
		return nil // killed by our signal
	}
	return d.err
}

// devPorts finds a base port such that eddy dev's Kafka ports (base ...
// base+n-1) and metrics ports (base+100 ... base+100+n) are free, and a
// free Postgres port.
func devPorts(n int) (base, pg int, err error) {
	offs := []int{200, 201, 100 + n}
	for i := 0; i < n; i++ {
		offs = append(offs, i, 100+i)
	}
	base, err = freeport.Base(offs...)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: ports for eddy dev: %w", err)
	}
	return base, base + 200, nil
}

func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
