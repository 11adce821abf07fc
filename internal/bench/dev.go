package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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

	"github.com/eddy-streams/eddy/internal/freeport"
	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
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

// StartDev runs `bin dev` with n brokers in dir, and the extra flags of
// eddy dev, and waits until it is ready. Stop it with Stop.
func StartDev(ctx context.Context, bin, dir string, n int, extra ...string) (*Dev, error) {
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
	cmd.Args = append(cmd.Args, extra...)
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

// S3Dev is an `eddy dev` stack whose brokers keep their objects in a
// private moto_server (internal/s3test) behind a LatencyProxy, rather than
// in the filesystem: the S3 run of `eddy bench --s3`.
type S3Dev struct {
	*Dev
	Proxy *LatencyProxy
	moto  *s3test.Moto
}

// s3Bucket is the S3 run's bucket.
const s3Bucket = "eddy-bench"

// StartS3Dev starts moto_server, a LatencyProxy with model in front of it
// and `bin dev` with n brokers in dir whose brokers use the proxy as their
// S3 endpoint. Stop stops all three.
func StartS3Dev(ctx context.Context, bin, dir string, n int, model LatencyModel) (_ *S3Dev, err error) {
	moto, err := s3test.StartMoto()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			moto.Close()
		}
	}()
	// The bucket is made directly on the server: no latency for set-up.
	b, err := s3bucket.New(ctx, s3bucket.Config{Endpoint: moto.Endpoint, Region: s3test.Region, Bucket: s3Bucket,
		AccessKey: s3test.MotoAccessKey, SecretKey: s3test.MotoSecretKey, PathStyle: true})
	if err != nil {
		return nil, err
	}
	if err := b.CreateBucketIfMissing(ctx); err != nil {
		return nil, fmt.Errorf("bench: create the S3 run's bucket: %w", err)
	}
	proxy, err := StartLatencyProxy(moto.Endpoint, model)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			proxy.Close()
		}
	}()
	var args []string
	for _, f := range []string{"--objstore=s3", "--s3-endpoint=" + proxy.URL, "--s3-bucket=" + s3Bucket,
		"--s3-region=" + s3test.Region, "--s3-path-style", "--s3-access-key=" + s3test.MotoAccessKey,
		"--s3-secret-key=" + s3test.MotoSecretKey} {
		args = append(args, "--broker-flag="+f)
	}
	dev, err := StartDev(ctx, bin, dir, n, args...)
	if err != nil {
		return nil, err
	}
	return &S3Dev{Dev: dev, Proxy: proxy, moto: moto}, nil
}

// Stop stops the brokers, then the proxy and the server.
func (d *S3Dev) Stop() error {
	err := d.Dev.Stop()
	d.Proxy.Close()
	d.moto.Close()
	return err
}
