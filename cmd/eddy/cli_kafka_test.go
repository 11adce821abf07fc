package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"sigs.k8s.io/yaml"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestCLIManagement runs the real binary against `eddy dev` (a broker, the
// control plane and its REST API): profiles of two organisations switched,
// ACLs, role bindings, quotas, consumer groups (lag, reset-offsets with a
// dry run, the real reset while the group is empty and NON_EMPTY_GROUP
// while it is not, delete), YAML output parsed back, and client
// configurations used unchanged by kcat, franz-go and kafkajs.
func TestCLIManagement(t *testing.T) {
	bin := stack.Binary(t)
	dir := t.TempDir()
	port := freePorts(t, 1)
	bootstrap := "127.0.0.1:" + strconv.Itoa(port)
	apiURL := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	startDev(t, bin, dir, "--database-url", pgtest.URL(t), "--port", strconv.Itoa(port),
		"--api-port", strings.TrimPrefix(apiURL, "http://127.0.0.1:"), "--brokers", "1")
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cfgPath := filepath.Join(dir, "cli", "config.json")
	cli := cliRunner{t: t, ctx: ctx, bin: bin, config: cfgPath}
	run, ok := cli.run, cli.ok
	// yamlOf runs a command with -o yaml and parses its output back into
	// v, zeroed first (YAML's null leaves a value as it was).
	yamlOf := func(v any, args ...string) {
		t.Helper()
		out := ok(append(args, "-o", "yaml")...)
		reflect.ValueOf(v).Elem().SetZero()
		if err := yaml.UnmarshalStrict([]byte(out), v); err != nil {
			t.Fatalf("eddy %s -o yaml: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, errs, err := run("", args...)
		if err == nil || !strings.Contains(errs, want) {
			t.Fatalf("eddy %s: want an error with %q, got %v\n%s%s", strings.Join(args, " "), want, err, out, errs)
		}
	}

	// Two organisations, a profile for each; the first is the current one.
	op := []string{"--url", apiURL, "--token", strings.TrimSpace(string(token))}
	var acme, other client.CreatedOrganization
	yamlOf(&acme, append([]string{"org", "create", "acme"}, op...)...)
	yamlOf(&other, append([]string{"org", "create", "other"}, op...)...)
	for _, o := range []client.CreatedOrganization{acme, other} {
		if out, errs, err := run(o.AdminAPIKey.Secret+"\n", "profile", "add", o.Organization.Name, "--url", apiURL,
			"--api-key-id", o.AdminAPIKey.ID, "--api-key-secret", "-"); err != nil {
			t.Fatalf("profile add: %v %s %s", err, out, errs)
		}
	}
	var cl client.Cluster
	yamlOf(&cl, "cluster", "create", "prod")
	if cl.Status != client.StatusReady || cl.Kafka.BootstrapServers != bootstrap {
		t.Fatalf("cluster = %+v", cl)
	}
	// The profile's default cluster serves every command taking --cluster.
	if _, errs, err := run(acme.AdminAPIKey.Secret, "profile", "add", "acme", "--url", apiURL,
		"--api-key-id", acme.AdminAPIKey.ID, "--api-key-secret", "-", "--cluster", cl.ID); err != nil {
		t.Fatalf("profile add --cluster: %v %s", err, errs)
	}
	if info, err := os.Stat(cfgPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("profiles file: %v %v", info, err)
	}
	var profiles []profileView
	yamlOf(&profiles, "profile", "list")
	if len(profiles) != 2 || profiles[0].Name != "acme" || !profiles[0].Current || profiles[0].Cluster != cl.ID || profiles[1].Current {
		t.Fatalf("profiles = %+v", profiles)
	}
	if out := ok("profile", "list", "-o", "json"); strings.Contains(out, acme.AdminAPIKey.Secret) || strings.Contains(out, other.AdminAPIKey.Secret) {
		t.Fatalf("profile list shows a secret:\n%s", out)
	}
	ok("profile", "use", "other")
	var cs []client.Cluster
	yamlOf(&cs, "cluster", "list")
	if len(cs) != 0 {
		t.Fatalf("organisation other lists %+v", cs)
	}
	yamlOf(&cs, "cluster", "list", "--profile", "acme")
	if len(cs) != 1 || cs[0].ID != cl.ID {
		t.Fatalf("--profile acme lists %+v", cs)
	}
	fails("404", "topic", "list", "--cluster", cl.ID) // other's key, acme's cluster
	ok("profile", "use", "acme")
	fails(`no profile "nope"`, "cluster", "list", "--profile", "nope")
	if out := ok("__complete", "profile", "use", ""); !strings.Contains(out, "acme\n") || !strings.Contains(out, "other\n") {
		t.Errorf("profile completion:\n%s", out)
	}
	if out := ok("completion", "bash"); !strings.Contains(out, "__start_eddy") {
		t.Errorf("bash completion:\n%.300s", out)
	}
	ok("topic", "create", "orders", "-p", "2")

	// Role bindings and ACLs.
	var sa client.ServiceAccount
	yamlOf(&sa, "service-account", "create", "app")
	var rb client.RoleBinding
	yamlOf(&rb, "role-binding", "create", "--service-account", sa.ID, "--role", client.RoleDeveloperRead)
	var rbs []client.RoleBinding
	yamlOf(&rbs, "role-binding", "list")
	if len(rbs) != 1 || rbs[0].ID != rb.ID || rbs[0].Role != client.RoleDeveloperRead || rbs[0].ServiceAccountID != sa.ID {
		t.Fatalf("role bindings = %+v", rbs)
	}
	fails("role", "role-binding", "create", "--service-account", sa.ID, "--role", "owner")
	ok("role-binding", "delete", rb.ID)
	yamlOf(&rbs, "role-binding", "list")
	if len(rbs) != 0 {
		t.Fatalf("role bindings after delete = %+v", rbs)
	}
	var a client.ACL
	yamlOf(&a, "acl", "create", "--principal", "User:"+sa.ID, "--operation", "write", "--permission", "deny", "--topic", "orders.", "--pattern", "prefixed")
	if a.ResourceType != client.ACLResourceTopic || a.ResourceName != "orders." || a.PatternType != client.ACLPatternPrefixed || a.Host != "*" {
		t.Fatalf("acl = %+v", a)
	}
	var acls []client.ACL
	yamlOf(&acls, "acl", "list")
	if len(acls) != 1 || acls[0].ID != a.ID {
		t.Fatalf("acls = %+v", acls)
	}
	if out := ok("acl", "list"); !strings.Contains(out, "User:"+sa.ID) || !strings.Contains(out, "deny") {
		t.Errorf("acl list:\n%s", out)
	}
	fails("operation", "acl", "create", "--principal", "User:"+sa.ID, "--operation", "fly", "--group", "g")
	ok("acl", "delete", a.ID)
	yamlOf(&acls, "acl", "list")
	if len(acls) != 0 {
		t.Fatalf("acls after delete = %+v", acls)
	}

	// Quotas within the plan.
	var q quotaView
	yamlOf(&q, "quota", "set", "--ingress-mbps", "20", "--max-connections", "300")
	if q.Limits.IngressMBps != 20 || q.EffectiveLimits.IngressMBps != 20 || q.Limits.MaxConnections != 300 || q.Plan == "" || q.Ceilings.IngressMBps < 20 {
		t.Fatalf("quota set = %+v", q)
	}
	if out := ok("quota", "show"); !regexp.MustCompile(`(?m)^ingress_mbps\s+20\s+\d+\s+20$`).MatchString(out) {
		t.Errorf("quota show:\n%s", out)
	}
	fails("nothing to set", "quota", "set")
	fails("--max-connections must be from", "quota", "set", "--max-connections", "0")

	// kcat, with the librdkafka properties as printed.
	kcat := cliTool(t, "kcat")
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-512"} {
		props := filepath.Join(dir, mech+".properties")
		writeFile(t, props, ok("client-config", "--lang", "librdkafka", "--mechanism", mech))
		value := "kcat-" + mech
		prod := exec.CommandContext(ctx, kcat, "-F", props, "-P", "-t", "orders", "-p", "0")
		prod.Stdin = strings.NewReader(value + "\n")
		if out, err := prod.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P (%s): %v\n%s", mech, err, out)
		}
		if out, err := exec.CommandContext(ctx, kcat, "-F", props, "-C", "-t", "orders", "-p", "0", "-o", "beginning", "-e", "-q").CombinedOutput(); err != nil || !strings.Contains(string(out), value) {
			t.Fatalf("kcat -C (%s): %v\n%s", mech, err, out)
		}
	}

	// franz-go: the printed options in a program of their own, which
	// produces, then consumes in group "franz" and commits.
	goDir := t.TempDir()
	writeFile(t, filepath.Join(goDir, "main.go"), franzMain)
	repoMod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(goDir, "go.mod"), strings.Replace(string(repoMod), "module github.com/eddy-streams/eddy", "module eddyclient", 1))
	repoSum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(goDir, "go.sum"), string(repoSum))
	for _, mech := range []string{"PLAIN", "OAUTHBEARER"} {
		snippet := ok("client-config", "--lang", "franz-go", "--mechanism", mech)
		writeFile(t, filepath.Join(goDir, "eddy.go"), "package main\n\n"+snippet)
		gorun := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "run", ".")
		gorun.Dir = goDir
		gorun.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err := gorun.CombinedOutput(); err != nil || !strings.Contains(string(out), "franz-go: ok") {
			t.Fatalf("the franz-go snippet (%s): %v\n%s\n%s", mech, err, out, snippet)
		}
	}

	// kafkajs, with the printed client.
	jsDir, _ := filepath.Abs(filepath.Join("..", "..", "test", "js"))
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "kafkajs")); err != nil {
		t.Fatal("kafkajs is not installed in test/js; `make deps` runs npm ci there")
	}
	jsFile := filepath.Join(t.TempDir(), "client.js")
	writeFile(t, jsFile, ok("client-config", "--lang", "kafkajs")+kafkajsMain)
	node := exec.CommandContext(ctx, cliTool(t, "node"), jsFile)
	node.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(jsDir, "node_modules"))
	if out, err := node.CombinedOutput(); err != nil || !strings.Contains(string(out), "kafkajs: ok") {
		t.Fatalf("the kafkajs snippet: %v\n%s", err, out)
	}
	var ccv clientConfigView
	yamlOf(&ccv, "client-config", "--lang", "python")
	if ccv.BootstrapServers != bootstrap || ccv.SecurityProtocol != "SASL_PLAINTEXT" || ccv.SASLMechanism != "PLAIN" || !strings.Contains(ccv.Config, "config = {") {
		t.Errorf("client-config -o yaml = %+v", ccv)
	}
	for _, lang := range []string{"java", "python"} {
		if out := ok("client-config", "--lang", lang); !strings.Contains(out, bootstrap) || !strings.Contains(out, acme.AdminAPIKey.ID+"@"+cl.ID) {
			t.Errorf("client-config --lang %s:\n%s", lang, out)
		}
	}
	if out := ok("client-config", "--lang", "librdkafka", "--mechanism", "OAUTHBEARER"); !strings.Contains(out, "sasl.oauthbearer.token.endpoint.url="+apiURL+"/oauth2/token") ||
		!strings.Contains(out, "sasl.oauthbearer.extensions=logicalCluster="+cl.ID) {
		t.Errorf("client-config OAUTHBEARER:\n%s", out)
	}

	// Groups: franz-go's program committed in group "franz".
	var groups []client.ConsumerGroup
	yamlOf(&groups, "group", "list")
	if len(groups) == 0 || !strings.Contains(ok("group", "list"), "franz") {
		t.Fatalf("groups = %+v", groups)
	}
	var g client.ConsumerGroupDetail
	yamlOf(&g, "group", "describe", "franz")
	committed := map[int32]int64{}
	for _, o := range g.Offsets {
		committed[o.Partition] = o.CommittedOffset
		if o.Topic != "orders" || o.CommittedOffset == 0 || o.Lag != o.HighWatermark-o.CommittedOffset {
			t.Fatalf("group franz = %+v", g)
		}
	}
	if out := ok("group", "describe", "franz"); !strings.Contains(out, "LAG") || !strings.Contains(out, "orders") {
		t.Errorf("group describe:\n%s", out)
	}
	var plan resetResult
	yamlOf(&plan, "group", "reset-offsets", "franz", "--to-earliest", "--dry-run")
	if !plan.DryRun || len(plan.Offsets) != len(committed) {
		t.Fatalf("dry run = %+v", plan)
	}
	for _, o := range plan.Offsets {
		if o.NewOffset != 0 || o.CurrentOffset != committed[o.Partition] {
			t.Fatalf("dry run = %+v, committed %v", plan, committed)
		}
	}
	if out := ok("group", "reset-offsets", "franz", "--to-earliest", "--dry-run"); !strings.Contains(out, "dry run") {
		t.Errorf("dry run's table:\n%s", out)
	}
	yamlOf(&g, "group", "describe", "franz")
	for _, o := range g.Offsets {
		if o.CommittedOffset != committed[o.Partition] {
			t.Fatalf("the dry run moved offsets: %+v", g)
		}
	}
	ok("group", "reset-offsets", "franz", "--to-earliest")
	yamlOf(&g, "group", "describe", "franz")
	for _, o := range g.Offsets {
		if o.CommittedOffset != 0 {
			t.Fatalf("after --to-earliest: %+v", g)
		}
	}
	yamlOf(&plan, "group", "reset-offsets", "franz", "--topic", "orders:0", "--to-offset", "1")
	if len(plan.Offsets) != 1 || plan.Offsets[0].Partition != 0 || plan.Offsets[0].NewOffset != 1 || plan.DryRun {
		t.Fatalf("--to-offset 1 = %+v", plan)
	}
	yamlOf(&plan, "group", "reset-offsets", "franz", "--topic", "orders", "--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339), "--dry-run")
	var top client.Topic
	yamlOf(&top, "topic", "describe", "orders")
	if len(plan.Offsets) != 2 {
		t.Fatalf("--to-datetime for both partitions = %+v", plan)
	}
	for _, o := range plan.Offsets {
		if o.NewOffset != top.Partitions[o.Partition].HighWatermark {
			t.Fatalf("--to-datetime in an hour = %+v, topic %+v", plan, top)
		}
	}

	// A member in the group: no reset, no delete.
	member, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.SASL(plain.Auth{User: acme.AdminAPIKey.ID + "@" + cl.ID, Pass: acme.AdminAPIKey.Secret}.AsMechanism()),
		kgo.ConsumerGroup("franz"), kgo.ConsumeTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	closeMember := sync.OnceFunc(member.Close)
	defer closeMember()
	go func() {
		for ctx.Err() == nil && !member.PollFetches(ctx).IsClientClosed() {
		}
	}()
	adm := kadm.NewClient(member)
	poll.Until(t, time.Minute, "group franz to have a member", func() error {
		ds, err := adm.DescribeGroups(ctx, "franz")
		if err != nil {
			return err
		}
		if st := ds["franz"].State; st != "Stable" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	fails("group is not empty (NON_EMPTY_GROUP)", "group", "reset-offsets", "franz", "--to-latest")
	fails("group is not empty (NON_EMPTY_GROUP)", "group", "delete", "franz")
	closeMember()
	if out := ok("group", "delete", "franz"); !strings.Contains(out, "Deleted group franz") {
		t.Errorf("group delete: %s", out)
	}
	if out := ok("group", "list"); strings.Contains(out, "franz") {
		t.Errorf("group list after delete:\n%s", out)
	}

	// The audit log holds what the commands above changed, read back as
	// YAML; bad filters fail before any request.
	poll.Until(t, 15*time.Second, "the ACL's audit row", func() error {
		var rows []client.AuditEntry
		yamlOf(&rows, "audit", "list", "--action", "acl.create", "--result", "ok", "--since", "1h")
		if len(rows) != 1 || rows[0].ResourceName != a.ID || rows[0].Result != "ok" || rows[0].Channel != "rest" {
			return fmt.Errorf("acl.create rows = %+v", rows)
		}
		return nil
	})
	fails("--since: want an RFC 3339 time or a duration", "audit", "list", "--since", "yesterday")

	// Identity federation: a provider and a pool, listed back as YAML; a
	// malformed --claim fails before any request.
	var idp client.IdentityProvider
	yamlOf(&idp, "identity-provider", "create", "corp", "--issuer", "https://login.corp.example",
		"--jwks-url", "https://login.corp.example/keys", "--audience", "eddy")
	var pool client.IdentityPool
	yamlOf(&pool, "identity-pool", "create", "payments", "--provider", idp.ID, "--service-account", sa.ID,
		"--claim", "sub=system:serviceaccount:prod:payments", "--claim", "groups=payments", "--claim", "groups=devs")
	if pool.ClusterID != cl.ID || len(pool.Filter["groups"]) != 2 || pool.Filter["sub"][0] != "system:serviceaccount:prod:payments" {
		t.Fatalf("identity pool = %+v", pool)
	}
	var pools []client.IdentityPool
	yamlOf(&pools, "identity-pool", "list")
	if len(pools) != 1 || pools[0].ID != pool.ID {
		t.Fatalf("identity pools = %+v", pools)
	}
	fails("--claim: want name=value", "identity-pool", "create", "x", "--provider", idp.ID, "--service-account", sa.ID, "--claim", "sub")
	// A pool by expression alone: list and get show the expression.
	expr := `"admins" in claims.groups && claims.email.endsWith("@corp.example")`
	var exprPool client.IdentityPool
	yamlOf(&exprPool, "identity-pool", "create", "admins", "--provider", idp.ID, "--service-account", sa.ID, "--filter-expression", expr)
	if exprPool.FilterExpression != expr || len(exprPool.Filter) != 0 {
		t.Fatalf("identity pool by expression = %+v", exprPool)
	}
	if out := ok("identity-pool", "list"); !strings.Contains(out, "FILTER EXPRESSION") || !strings.Contains(out, expr) {
		t.Errorf("identity-pool list does not show the filter expression:\n%s", out)
	}
	if out := ok("identity-pool", "get", exprPool.ID); !regexp.MustCompile(`(?m)^Filter expression:?\s+` + regexp.QuoteMeta(expr) + `$`).MatchString(out) {
		t.Errorf("identity-pool get does not show the filter expression:\n%s", out)
	}
	var got client.IdentityPool
	yamlOf(&got, "identity-pool", "get", pool.ID)
	if got.ID != pool.ID || len(got.Filter["groups"]) != 2 {
		t.Errorf("identity-pool get -o yaml = %+v", got)
	}
	if out := ok("identity-provider", "delete", idp.ID); !strings.Contains(out, "Deleted identity provider") {
		t.Errorf("identity-provider delete: %s", out)
	}
	yamlOf(&pools, "identity-pool", "list")
	if len(pools) != 0 {
		t.Fatalf("pools left after their provider was deleted: %+v", pools)
	}
	fails("--result must be ok, failed or denied", "audit", "list", "--result", "maybe")
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func cliTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed; `make deps` installs it", name)
	}
	return p
}

// franzMain uses eddyOpts, the printed franz-go options.
const franzMain = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Println("franz-go:", err)
		os.Exit(1)
	}
	fmt.Println("franz-go: ok")
}

func run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(eddyOpts(), kgo.DefaultProduceTopic("orders"), kgo.ConsumerGroup("franz"),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("franz-record")}).FirstErr(); err != nil {
		return err
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, r := range fs.Records() {
			if string(r.Value) == "franz-record" {
				return cl.CommitUncommittedOffsets(ctx)
			}
		}
	}
}
`

// kafkajsMain uses kafka, the printed kafkajs client.
const kafkajsMain = `
(async () => {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'orders', messages: [{ value: 'kafkajs-record' }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'kafkajs' });
  await consumer.connect();
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no record within 60s')), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value.toString() === 'kafkajs-record') {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  console.log('kafkajs: ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`
