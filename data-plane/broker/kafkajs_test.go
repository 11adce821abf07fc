package broker_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestKafkaJSRoundTrip: kafkajs (npm) produces with idempotence and
// consumes back through a consumer group.
func TestKafkaJSRoundTrip(t *testing.T) {
	node := tool(t, "node")
	_, file, _, _ := runtime.Caller(0)
	jsDir := filepath.Join(filepath.Dir(file), "..", "..", "test", "js")
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "kafkajs")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kafkajs is not installed in test/js; `make deps` runs npm ci there")
		}
		t.Skip("kafkajs is not installed in test/js (run `make deps`)")
	}
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	cmd := exec.Command(node, filepath.Join(jsDir, "roundtrip.js"), strings.Join(s.Bootstrap(), ","), "kafkajs-roundtrip", "2000")
	cmd.Dir = jsDir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kafkajs did not finish within 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("kafkajs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct{ Produced, Consumed, Bad int }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("unexpected output: %s", out)
	}
	if sum.Produced != 2000 || sum.Consumed != 2000 || sum.Bad != 0 {
		t.Fatalf("kafkajs summary %+v, want 2000 produced and consumed intact", sum)
	}
}
