package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
)

// sizer is what both scalers offer the autoscaler.
type sizer interface {
	Size(context.Context) (int, error)
	Scale(context.Context, int) error
}

// acceptance is run over every scaler: sizes stick, and a negative size
// is refused.
func acceptance(t *testing.T, s sizer, observed func() int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, n := range []int{3, 5, 2, 0, 1} {
		if err := s.Scale(ctx, n); err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
		got, err := s.Size(ctx)
		if err != nil || got != n {
			t.Fatalf("size after scaling to %d: %d %v", n, got, err)
		}
		poll.Until(t, time.Minute, fmt.Sprintf("%d running", n), func() error {
			if got := observed(); got != n {
				return fmt.Errorf("%d running", got)
			}
			return nil
		})
	}
	if err := s.Scale(ctx, -1); !errors.Is(err, ErrRange) {
		t.Fatalf("scale to -1: %v, want ErrRange", err)
	}
}

// fakeAPIServer speaks the scale subresource of one StatefulSet as the
// Kubernetes API server does: GET returns the Scale object, PATCH with a
// merge patch sets spec.replicas; a wrong token gets 401, another object
// 404 with a Status.
type fakeAPIServer struct {
	mu       sync.Mutex
	replicas int
	patches  int
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
	}
	if r.Header.Get("Authorization") != "Bearer sa-token" {
		status(http.StatusUnauthorized, "Unauthorized")
		return
	}
	if r.URL.Path != "/apis/apps/v1/namespaces/eddy/statefulsets/brokers/scale" {
		status(http.StatusNotFound, `statefulsets.apps "x" not found`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
			status(http.StatusUnsupportedMediaType, "the body of the request was in an unknown format: "+ct)
			return
		}
		var p struct {
			Spec struct {
				Replicas *int `json:"replicas"`
			} `json:"spec"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil || p.Spec.Replicas == nil {
			status(http.StatusBadRequest, "bad patch")
			return
		}
		if *p.Spec.Replicas < 0 {
			status(http.StatusUnprocessableEntity, `Scale.autoscaling "brokers" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`)
			return
		}
		f.replicas = *p.Spec.Replicas
		f.patches++
	default:
		status(http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "Scale", "apiVersion": "autoscaling/v1",
		"metadata": map[string]any{"name": "brokers", "namespace": "eddy"},
		"spec":     map[string]int{"replicas": f.replicas},
		"status":   map[string]any{"replicas": f.replicas, "selector": "app=eddy-broker"},
	})
}

func TestKubernetes(t *testing.T) {
	fake := &fakeAPIServer{replicas: 1}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("sa-token\n"), 0o600)
	cfg := DefaultKubernetesConfig()
	cfg.APIServer, cfg.Namespace, cfg.Name, cfg.TokenFile = srv.URL, "eddy", "brokers", tok
	k, err := NewKubernetes(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	acceptance(t, k, func() int { fake.mu.Lock(); defer fake.mu.Unlock(); return fake.replicas })

	// Errors carry the API server's message.
	os.WriteFile(tok, []byte("revoked"), 0o600)
	if _, err := k.Size(context.Background()); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("with a bad token: %v", err)
	}
	if _, err := NewKubernetes(KubernetesConfig{APIServer: srv.URL, Namespace: "eddy", Name: "b", Kind: "pods"}, nil); err == nil {
		t.Fatal("accepted kind pods")
	}
}

func TestProcesses(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p := &Processes{Command: func(id int) *exec.Cmd { return exec.Command(sleep, strconv.Itoa(300+id)) }, StopTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	running := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, pr := range p.procs {
			select {
			case <-pr.done:
			default:
				n++
			}
		}
		return n
	}
	acceptance(t, p, running)

	// A broker that dies is replaced.
	if err := p.Scale(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "2 brokers running", func() error {
		if n := running(); n != 2 {
			return fmt.Errorf("%d running", n)
		}
		return nil
	})
	p.mu.Lock()
	victim := p.procs[2]
	p.mu.Unlock()
	victim.cmd.Process.Kill()
	<-victim.done
	poll.Until(t, time.Minute, "the killed broker to be replaced", func() error {
		p.mu.Lock()
		replaced := p.procs[2] != victim
		p.mu.Unlock()
		if n := running(); !replaced || n != 2 {
			return fmt.Errorf("broker 2 replaced: %v; %d running", replaced, n)
		}
		return nil
	})
}
