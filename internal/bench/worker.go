package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// A worker is a child process that runs one produce phase for the bench
// (`eddy bench-worker`), so that a noisy tenant's clients compete with
// the measured tenant's client for the CPU only the way another
// customer's machine would: through the brokers. The parent writes a
// workerJob as JSON to its stdin and reads a workerResult from its
// stdout; the worker's stderr is its progress, a line at a time. The job
// carries an API key, which is why it goes through stdin and never the
// command line.

// workerJob is one produce phase for a worker.
type workerJob struct {
	Name     string   `json:"name"` // of the target, in progress lines
	Seeds    []string `json:"seeds"`
	User     string   `json:"user"` // SASL/PLAIN; empty: none
	Pass     string   `json:"pass"`
	Workload Workload `json:"workload"`
	Topic    string   `json:"topic"`
}

// workerResult is the phase's outcome; Err is set when it failed.
type workerResult struct {
	Result   *Result  `json:"result"`
	Throttle Throttle `json:"throttle"`
	Err      string   `json:"error,omitempty"`
}

// Worker runs the job it reads from in and writes its result to out, its
// progress to progress; it is the body of `eddy bench-worker`. A failed
// phase is reported in the result, and Worker's error is for the pipes.
func Worker(ctx context.Context, in io.Reader, out io.Writer, progress func(string)) error {
	var job workerJob
	if err := json.NewDecoder(in).Decode(&job); err != nil {
		return fmt.Errorf("bench: worker job: %w", err)
	}
	tg := target{name: job.Name, seeds: job.Seeds}
	if job.User != "" {
		tg.opts = append(tg.opts, kgo.SASL(plain.Auth{User: job.User, Pass: job.Pass}.AsMechanism()))
	}
	hook := &throttleHook{}
	res := workerResult{Result: &Result{Target: tg.name}}
	if err := producePhase(ctx, withHookOf(tg, hook), job.Workload, job.Topic, res.Result, progress); err != nil {
		res.Err = err.Error()
	}
	res.Throttle = hook.result()
	return json.NewEncoder(out).Encode(res)
}

// runWorker runs job in a child started with argv, which stops with ctx.
func runWorker(ctx context.Context, argv []string, job workerJob, progress func(string)) (workerResult, error) {
	if len(argv) == 0 {
		return workerResult{}, errors.New("no worker command")
	}
	in, err := json.Marshal(job)
	if err != nil {
		return workerResult{}, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	var tail []string // the last lines, for an error
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			progress(sc.Text())
			tail = append(tail[max(0, len(tail)-39):], sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	err = cmd.Run()
	pw.Close()
	<-copied
	if err != nil {
		return workerResult{}, fmt.Errorf("worker: %w\n%s", err, strings.Join(tail, "\n"))
	}
	var res workerResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return workerResult{}, fmt.Errorf("worker: result: %w", err)
	}
	if res.Err != "" {
		return workerResult{}, fmt.Errorf("worker: %s", res.Err)
	}
	return res, nil
}
