package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/eddy-streams/eddy/internal/freeport"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/seal"
	"github.com/eddy-streams/eddy/internal/stack"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cliRunner runs the eddy binary with a CLI file (profiles) of its own.
type cliRunner struct {
	t      *testing.T
	ctx    context.Context
	bin    string
	config string
}

// run runs eddy with args and stdin, returning its stdout and stderr.
func (r cliRunner) run(stdin string, args ...string) (string, string, error) {
	r.t.Helper()
	cmd := exec.CommandContext(r.ctx, r.bin, args...)
	cmd.Env = append(os.Environ(), "EDDY_CLI_CONFIG="+r.config)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// ok runs eddy with args, fails the test if it fails, and returns stdout.
func (r cliRunner) ok(args ...string) string {
	r.t.Helper()
	out, errs, err := r.run("", args...)
	if err != nil {
		r.t.Fatalf("eddy %s: %v\n%s%s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// TestTenantCLI runs the real binary: `eddy control-plane` serving the
// REST API, and the tenant CLI against it, from org creation to deletion.
func TestTenantCLI(t *testing.T) {
	bin := stack.Binary(t)
	dbURL := pgtest.URL(t)
	port, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "http://" + addr
	const token = "cli-test-operator-token-0123456789"
	dir := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp := exec.Command(bin, "control-plane", "--database-url", dbURL, "--api-listen", addr,
		"--kafka-bootstrap", "kafka.example:9092", "--placement-interval", "200ms")
	// Flags also come from the environment, the key-encryption key too.
	kek := seal.EncodeKey(seal.NewKey())
	cp.Env = append(os.Environ(), "EDDY_ADMIN_TOKEN="+token, "EDDY_SECRETS_KEY="+kek)
	logf, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		t.Fatal(err)
	}
	cp.Stdout, cp.Stderr = logf, logf
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cp.Process.Signal(os.Interrupt)
		cp.Wait()
		b, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(b), kek) {
			t.Error("the control plane logged its key-encryption key")
		}
		if t.Failed() {
			t.Logf("control plane log:\n%s", b)
		}
	})
	if !stack.WaitFor(ctx, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}) {
		t.Fatal("the control plane's REST API never became ready")
	}

	cli := cliRunner{t: t, ctx: ctx, bin: bin, config: filepath.Join(dir, "config.json")}
	run, ok := cli.run, cli.ok
	jsonOf := func(v any, args ...string) {
		t.Helper()
		out := ok(append(args, "-o", "json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("eddy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var org client.CreatedOrganization
	jsonOf(&org, "org", "create", "acme", "--url", url, "--token", token)
	if org.AdminAPIKey.Secret == "" {
		t.Fatalf("org create = %+v", org)
	}
	if out, errs, err := run(org.AdminAPIKey.Secret+"\n", "login", "--url", url, "--api-key-id", org.AdminAPIKey.ID, "--api-key-secret", "-"); err != nil || !strings.Contains(out, "Logged in") {
		t.Fatalf("login: %v %s %s", err, out, errs)
	}
	if info, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("saved login: %v %v", info, err)
	}
	// --profile may name a profile login creates.
	if out, errs, err := run(org.AdminAPIKey.Secret+"\n", "login", "--profile", "second", "--url", url, "--api-key-id", org.AdminAPIKey.ID, "--api-key-secret", "-"); err != nil || !strings.Contains(out, "saved as profile second") {
		t.Fatalf("login --profile second: %v %s %s", err, out, errs)
	}
	if out := ok("cluster", "list", "--profile", "second"); !strings.Contains(out, "NAME") {
		t.Fatalf("cluster list --profile second: %q", out)
	}

	out, errs, err := run("", "cluster", "create", "prod", "--max-partitions", "20", "--max-connections", "50", "--config", "retention.ms=60000", "-o", "json")
	if err != nil {
		t.Fatalf("cluster create: %v %s", err, errs)
	}
	var cl client.Cluster
	if err := json.Unmarshal([]byte(out), &cl); err != nil {
		t.Fatal(err)
	}
	if cl.Status != "ready" || cl.Limits.MaxPartitions != 20 || cl.Limits.MaxConnections != 50 || cl.Limits.MaxRequestsPerSec != 10_000 ||
		cl.Kafka.BootstrapServers != "kafka.example:9092" {
		t.Fatalf("cluster = %+v", cl)
	}
	if !strings.Contains(errs, "cluster "+cl.ID+" (prod): ") || !strings.Contains(errs, "ready") {
		t.Errorf("no progress line on stderr: %q", errs)
	}
	if out := ok("cluster", "list"); !strings.Contains(out, cl.ID) || !strings.Contains(out, "STATUS") {
		t.Errorf("cluster list:\n%s", out)
	}
	if out := ok("cluster", "describe", cl.ID); !strings.Contains(out, "kafka.example:9092") || !strings.Contains(out, "/oauth2/token") {
		t.Errorf("cluster describe:\n%s", out)
	}
	// update changes only what it is given.
	var up client.Cluster
	jsonOf(&up, "cluster", "update", cl.ID, "--max-requests-per-sec", "300", "--max-connections", "60")
	if up.Limits.MaxRequestsPerSec != 300 || up.Limits.MaxConnections != 60 || up.Limits.MaxPartitions != 20 || up.Name != "prod" {
		t.Fatalf("updated cluster = %+v", up)
	}
	jsonOf(&up, "cluster", "update", cl.ID, "--broker-config", "num.partitions=6", "--broker-config", "log.retention.ms=3600000")
	if up.BrokerConfigs["num.partitions"] != "6" || up.BrokerConfigs["log.retention.ms"] != "3600000" || up.Limits.MaxRequestsPerSec != 300 {
		t.Fatalf("cluster after --broker-config = %+v", up)
	}
	if out := ok("cluster", "describe", cl.ID); !strings.Contains(out, "num.partitions=6") {
		t.Errorf("cluster describe after --broker-config:\n%s", out)
	}
	if out := ok("cluster", "describe", cl.ID); !strings.Contains(out, "300/s") {
		t.Errorf("cluster describe after update:\n%s", out)
	}
	jsonOf(&up, "cluster", "update", cl.ID, "--allow-cidr", "127.0.0.1", "--allow-cidr", "10.1.0.0/16")
	if !slices.Equal(up.AllowedCIDRs, []string{"10.1.0.0/16", "127.0.0.1/32"}) {
		t.Fatalf("cluster after --allow-cidr = %+v", up.AllowedCIDRs)
	}
	if out := ok("cluster", "describe", cl.ID); !strings.Contains(out, "10.1.0.0/16, 127.0.0.1/32") {
		t.Errorf("cluster describe after --allow-cidr:\n%s", out)
	}
	jsonOf(&up, "cluster", "update", cl.ID, "--allow-cidr", "")
	if len(up.AllowedCIDRs) != 0 {
		t.Fatalf("cluster after --allow-cidr \"\" = %+v", up.AllowedCIDRs)
	}
	if _, errs, err := run("", "cluster", "update", cl.ID, "--max-connections", "0"); err == nil || !strings.Contains(errs, "--max-connections must be from 1 to 100000") {
		t.Errorf("out-of-range connection limit: %v %s", err, errs)
	}
	if _, _, err := run("", "cluster", "update", cl.ID); err == nil {
		t.Error("update without anything to update succeeded")
	}

	// Plans (operator): a tenant's update over its plan's ceiling is
	// refused readably; raising the ceiling lets it through; lowering it
	// caps the cluster.
	op := []string{"--url", url, "--token", token}
	var plan client.Plan
	jsonOf(&plan, append([]string{"plan", "create", "small", "--name", "Small", "--ingress-mbps", "50", "--max-connections", "100"}, op...)...)
	if plan.ID != "small" || plan.Ceilings.IngressMBps != 50 || plan.Ceilings.MaxConnections != 100 || plan.Ceilings.MaxPartitions != 100_000 {
		t.Fatalf("plan create = %+v", plan)
	}
	if out := ok(append([]string{"plan", "list"}, op...)...); !strings.Contains(out, "small") || !strings.Contains(out, "standard") {
		t.Errorf("plan list:\n%s", out)
	}
	if out := ok(append([]string{"plan", "get", "small"}, op...)...); !strings.Contains(out, "Ceiling ingress_mbps:") || !strings.Contains(out, "50") {
		t.Errorf("plan get:\n%s", out)
	}
	ok(append([]string{"plan", "assign", "small", "--org", org.Organization.ID}, op...)...)
	if _, errs, err := run("", "cluster", "update", cl.ID, "--ingress-mbps", "80"); err == nil ||
		!strings.Contains(errs, "limits.ingress_mbps: must be at most 50, the ceiling of plan small") {
		t.Errorf("update over the plan's ceiling: %v %s", err, errs)
	}
	if _, errs, err := run("", "plan", "list"); err == nil || !strings.Contains(errs, "403") {
		t.Errorf("tenant lists plans: %v %s", err, errs)
	}
	jsonOf(&plan, append([]string{"plan", "update", "small", "--ingress-mbps", "100"}, op...)...)
	jsonOf(&up, "cluster", "update", cl.ID, "--ingress-mbps", "80")
	if up.Limits.IngressMBps != 80 || up.EffectiveLimits.IngressMBps != 80 || up.Plan != "small" {
		t.Fatalf("update under the raised ceiling = %+v", up)
	}
	ok(append([]string{"plan", "update", "small", "--ingress-mbps", "20"}, op...)...)
	if out := ok("cluster", "describe", cl.ID); !strings.Contains(out, "ingress_mbps=20") {
		t.Errorf("cluster describe under a lowered ceiling:\n%s", out)
	}
	if _, errs, err := run("", append([]string{"plan", "update", "small", "--max-topics", "0"}, op...)...); err == nil || !strings.Contains(errs, "--max-topics must be from 1 to 100000") {
		t.Errorf("out-of-range ceiling: %v %s", err, errs)
	}
	ok(append([]string{"plan", "update", "small", "--ingress-mbps", "10000", "--max-connections", "100000"}, op...)...)

	var top client.Topic
	jsonOf(&top, "topic", "create", "orders", "--cluster", cl.ID, "-p", "3", "--config", "cleanup.policy=compact")
	if top.PartitionCount != 3 || top.Configs["retention.ms"] != "60000" || top.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("topic = %+v", top)
	}
	jsonOf(&top, "topic", "alter", "orders", "--cluster", cl.ID, "-p", "5")
	if top.PartitionCount != 5 {
		t.Fatalf("altered topic = %+v", top)
	}
	var topics []client.Topic
	jsonOf(&topics, "topic", "list", "--cluster", cl.ID)
	if len(topics) != 1 {
		t.Fatalf("topics = %+v", topics)
	}
	if out := ok("topic", "describe", "orders", "--cluster", cl.ID); !strings.Contains(out, "partition 4") {
		t.Errorf("topic describe:\n%s", out)
	}

	var sa client.ServiceAccount
	jsonOf(&sa, "service-account", "create", "app", "--description", "the shop")
	var key client.APIKey
	jsonOf(&key, "api-key", "create", "--service-account", sa.ID, "--cluster", cl.ID)
	if key.Secret == "" || key.ClusterID != cl.ID {
		t.Fatalf("key = %+v", key)
	}
	if out := ok("api-key", "list"); !strings.Contains(out, key.ID) || strings.Contains(out, key.Secret) {
		t.Errorf("api-key list:\n%s", out)
	}
	if out := ok("service-account", "list"); !strings.Contains(out, "app") || !strings.Contains(out, "admin") {
		t.Errorf("service-account list:\n%s", out)
	}

	// Errors say what the API said and exit non-zero.
	if _, errs, err := run("", "cluster", "describe", "vc-nope"); err == nil || !strings.Contains(errs, "404") {
		t.Errorf("describe a missing cluster: %v %q", err, errs)
	}
	if _, errs, err := run("", "topic", "create", "bad/name", "--cluster", cl.ID); err == nil || !strings.Contains(errs, "name") {
		t.Errorf("bad topic name: %v %q", err, errs)
	}

	// Billing: no traffic yet, so a zero estimate and a draft invoice.
	if out := ok("billing", "estimate"); !strings.Contains(out, "Month to date:  0.00 USD") {
		t.Errorf("billing estimate:\n%s", out)
	}
	var invs []client.Invoice
	jsonOf(&invs, "billing", "invoices")
	if len(invs) != 1 || invs[0].Status != "draft" || invs[0].Total != "0.00" {
		t.Fatalf("invoices = %+v", invs)
	}
	if out := ok("billing", "invoices", invs[0].ID); !strings.Contains(out, "Status:") || !strings.Contains(out, "AMOUNT (USD)") {
		t.Errorf("billing invoices ID:\n%s", out)
	}
	if out := ok("billing", "invoices", invs[0].ID, "--csv"); !strings.HasPrefix(out, "invoice,month,status,cluster_id") || !strings.Contains(out, ",total,,,,,0.00,USD") {
		t.Errorf("invoice CSV:\n%s", out)
	}
	var usage client.Usage
	jsonOf(&usage, "billing", "usage", "--granularity", "hour", "--from", "2026-01-01", "--to", "2026-01-02")
	if usage.Granularity != "hour" || usage.TimeZone != "UTC" || len(usage.Items) != 0 {
		t.Errorf("usage = %+v", usage)
	}
	if _, errs, err := run("", "billing", "usage", "--granularity", "week"); err == nil || !strings.Contains(errs, "granularity") {
		t.Errorf("bad granularity: %v %q", err, errs)
	}

	ok("api-key", "delete", key.ID)
	ok("service-account", "delete", sa.ID)
	ok("topic", "delete", "orders", "--cluster", cl.ID)
	ok("cluster", "delete", cl.ID)
	if out := ok("cluster", "list", "-o", "json"); strings.TrimSpace(out) != "null" && strings.TrimSpace(out) != "[]" {
		t.Errorf("clusters after delete: %s", out)
	}
}
