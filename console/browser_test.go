package console_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/console"
	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/freeport"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// chromiumPath is Debian's chromium, which `make deps` installs.
const chromiumPath = "/usr/bin/chromium"

// requireBrowser skips the browser test when chromium or the console's
// build is missing, unless EDDY_BROWSER_REQUIRE is set (make test sets
// it), where a missing piece fails the test.
func requireBrowser(t *testing.T) {
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (make deps installs Debian's chromium)")
	}
	if !console.Built() {
		missing = append(missing, "the console's build in console/dist (make console)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "the browser test needs " + strings.Join(missing, " and ")
	if os.Getenv("EDDY_BROWSER_REQUIRE") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; make test runs it")
}

// devStack is `eddy dev` with three brokers on free ports, in a temporary
// directory, metering usage and sampling consumer-group lag every second,
// with the autoscaler evaluating every second and held at three brokers
// (the operator's pages show the pool and its decisions; nothing starts or
// stops brokers under the test).
type devStack struct {
	api       string
	bootstrap string
	dir       string
	dbURL     string
	env       map[string]string // dev.env: EDDY_ORG, EDDY_CLUSTER, EDDY_API_KEY, EDDY_API_SECRET
}

// devBrokers is how many brokers startDev runs.
const devBrokers = 3

func startDev(t *testing.T) *devStack {
	bin := stack.Binary(t)
	var offsets []int // the brokers' Kafka ports, the control plane's and the brokers' metrics ports
	for i := range devBrokers {
		offsets = append(offsets, i, 101+i)
	}
	port, err := freeport.Base(append(offsets, 100)...)
	if err != nil {
		t.Fatal(err)
	}
	apiPort, err := freeport.One()
	if err != nil {
		t.Fatal(err)
	}
	d := &devStack{dir: t.TempDir(), dbURL: pgtest.URL(t), api: "http://127.0.0.1:" + strconv.Itoa(apiPort), bootstrap: "127.0.0.1:" + strconv.Itoa(port)}
	cmd := exec.Command(bin, "dev", "--data-dir", d.dir, "--database-url", d.dbURL,
		"--port", strconv.Itoa(port), "--api-port", strconv.Itoa(apiPort), "--brokers", strconv.Itoa(devBrokers),
		"--autoscale", "--autoscale-min", strconv.Itoa(devBrokers), "--autoscale-max", strconv.Itoa(devBrokers), "--autoscale-interval", "1s",
		"--broker-flag=--metering-window=1s", "--broker-flag=--flush-interval=50ms", "--lag-sample-interval=1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(d.dir, "eddy-dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		saw := false
		for sc.Scan() {
			if sc.Text() == "ready" && !saw {
				saw = true
				ready <- true
			}
		}
		if !saw {
			ready <- false
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	select {
	case ok := <-ready:
		if !ok {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("eddy dev exited before ready:\n%s", b)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("eddy dev not ready within 3 minutes")
	}
	b, err := os.ReadFile(filepath.Join(d.dir, "dev.env"))
	if err != nil {
		t.Fatal(err)
	}
	d.env = map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			d.env[k] = v
		}
	}
	return d
}

// orgAdminKey makes an organisation-wide key for the dev organisation's
// admin: eddy dev's own key is limited to its cluster, and billing and
// API keys are organisation-wide pages.
func orgAdminKey(t *testing.T, d *devStack) (id, secret string) {
	ctx := context.Background()
	st, err := store.Open(ctx, d.dbURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sas, _, err := st.ServiceAccounts(ctx, d.env["EDDY_ORG"], store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas {
		if sa.OrgAdmin {
			secret, hash := identity.NewSecret()
			k, err := st.CreateAPIKey(ctx, d.env["EDDY_ORG"], sa.ID, "", "console browser test", hash, identity.SCRAMCredentials(secret))
			if err != nil {
				t.Fatal(err)
			}
			return k.ID, secret
		}
	}
	t.Fatal("the dev organisation has no org admin")
	return "", ""
}

// browser runs actions in one headless chromium tab, each batch within a
// deadline.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.DisableGPU)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must not carry a deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		shot, _ := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		p := filepath.Join(b.t.TempDir(), "failure.png")
		os.WriteFile(p, shot, 0o644)
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main')?.innerText ?? ''`))
		b.t.Fatalf("%s: %v\npage text: %s\nscreenshot: %s", what, err, html, p)
	}
}

// until waits for a JavaScript condition.
func until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(80*time.Second), chromedp.WithPollingInterval(200*time.Millisecond))
}

func hash(route string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", route))
}

// screenshot writes docs/console/<name>.png when EDDY_UPDATE_SCREENSHOTS
// is set (the README shows them): of the top of the page, or with the
// element of a CSS selector scrolled to the top.
func (b *browser) screenshot(name string, at ...string) {
	b.t.Helper()
	if os.Getenv("EDDY_UPDATE_SCREENSHOTS") == "" {
		return
	}
	scroll := `window.scrollTo(0, 0)`
	if len(at) > 0 {
		scroll = fmt.Sprintf(`document.querySelector(%q).scrollIntoView()`, at[0])
	}
	b.do("scroll", chromedp.Evaluate[chromedp.Void](scroll))
	time.Sleep(300 * time.Millisecond) // let the charts settle after the scroll
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "console", name+".png"), shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// choose picks value in a select and tells the page, as a user's choice would.
func choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})); })(document.querySelector(%q))`, value, sel))
}

func textContains(sel, text string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? '').includes(%q)`, sel, text)
}

// TestConsoleInBrowser drives the console in headless chromium against
// `eddy dev`: sign in with an API key, create a topic (and delete one
// after confirming its name), produce a record
// and see it in the message browser, watch a kgo consumer group's lag
// appear and fall to zero, rotate an API key, see the usage chart with
// data, and be refused a page the key's role does not allow. Then the
// operator's part (issue 25): a tenant sees no operator pages and is
// refused their URLs; the operator signs in with the operator token, sees
// the pool's three brokers with their bar chart, the autoscaler's chart
// with data and its decisions, and creates a plan and edits a ceiling.
func TestConsoleInBrowser(t *testing.T) {
	requireBrowser(t)
	d := startDev(t)
	cluster := d.env["EDDY_CLUSTER"]
	adminID, adminSecret := orgAdminKey(t, d)
	b := newBrowser(t)
	const topic = "orders"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	b.do("sign in",
		chromedp.Navigate(d.api+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-id]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=key-id]`), adminID),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=key-secret]`), adminSecret),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in]`)),
		until(textContains(`[data-testid=clusters]`, cluster)),
	)

	b.do("create a topic",
		hash("#/clusters/"+cluster+"/topics"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=topic-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=topic-name]`), topic),
		chromedp.Click(chromedp.CSS(`[data-testid=create-topic]`)),
		until(textContains(`[data-testid=topics]`, topic)),
	)

	// A kgo producer and a consumer group with the dev tenant's key.
	auth := kgo.SASL(plain.Auth{User: d.env["EDDY_API_KEY"], Pass: d.env["EDDY_API_SECRET"]}.AsMechanism())
	producer, err := kgo.NewClient(kgo.SeedBrokers(d.bootstrap), auth, kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var recs []*kgo.Record
	for i := range 60 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%6), Value: fmt.Appendf(nil, "order-%d", i)})
	}
	if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	b.do("produce from the console and see the record in the message browser",
		hash("#/clusters/"+cluster+"/messages/"+topic),
		until(`document.querySelectorAll('[data-testid=browse-topic] option').length > 1`),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=produce-key]`), "console-key"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=produce-value]`), "hello from the console"),
		chromedp.Click(chromedp.CSS(`[data-testid=produce]`)),
		until(textContains(`main`, "Produced to partition 0")),
		chromedp.Click(chromedp.CSS(`[data-testid=browse-load]`)),
		until(textContains(`[data-testid=records]`, "hello from the console")),
	)
	b.screenshot("messages")

	// The group commits the first few records of each partition it read:
	// lag appears on every partition.
	group, err := kgo.NewClient(kgo.SeedBrokers(d.bootstrap), auth, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("billing-app"),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	var read []*kgo.Record
	for len(read) < len(recs)+1 && ctx.Err() == nil {
		read = append(read, group.PollFetches(ctx).Records()...)
	}
	var some []*kgo.Record
	perPartition := map[int32]int{}
	for _, r := range read {
		if perPartition[r.Partition] < 4 {
			perPartition[r.Partition]++
			some = append(some, r)
		}
	}
	if err := group.CommitRecords(ctx, some...); err != nil {
		t.Fatal(err)
	}
	b.do("see the group's lag",
		hash("#/clusters/"+cluster+"/groups"),
		until(textContains(`[data-testid=groups]`, "billing-app")),
		hash("#/clusters/"+cluster+"/groups/billing-app"),
		until(`Number(document.querySelector('[data-testid=total-lag]')?.dataset.lag) > 0`),
		until(`document.querySelector('[data-testid=lag-chart]')?.dataset.points >= 2`),
	)
	// The control plane samples the lag too: the history the server kept
	// charts it (it refreshes every 30 s, so reopen the page to see it now).
	poll.Until(t, time.Minute, "a lag sample of billing-app with lag", func() error {
		h, err := client.New(d.api, client.WithAPIKey(adminID, adminSecret)).GetLagHistory(ctx, cluster, "billing-app", client.LagHistoryQuery{})
		if err != nil || len(h.Samples) == 0 || h.Samples[len(h.Samples)-1].TotalLag == 0 {
			return fmt.Errorf("%d samples, %v", len(h.Samples), err)
		}
		return nil
	})
	b.do("see the server-side lag history",
		hash("#/clusters/"+cluster+"/groups"),
		until(textContains(`[data-testid=groups]`, "billing-app")),
		hash("#/clusters/"+cluster+"/groups/billing-app"),
		until(`document.querySelector('[data-testid=lag-history-chart]')?.dataset.points >= 1 && !!document.querySelector('[data-testid=lag-history-chart] canvas')`),
	)
	if err := group.CommitRecords(ctx, read...); err != nil {
		t.Fatal(err)
	}
	b.do("see the lag fall to zero",
		until(`document.querySelector('[data-testid=total-lag]')?.dataset.lag === '0'`),
		until(`document.querySelector('[data-testid=lag-chart]')?.dataset.points >= 3`),
	)
	b.screenshot("consumer-lag")

	// A topic is deleted only after its name is typed.
	admin := client.New(d.api, client.WithAPIKey(adminID, adminSecret))
	if _, err := admin.CreateTopic(ctx, cluster, client.CreateTopicRequest{Name: "scratch"}); err != nil {
		t.Fatal(err)
	}
	b.do("delete a topic with confirmation",
		hash("#/clusters/"+cluster+"/topics/scratch"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=delete-topic]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=delete-topic]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-name]`)),
		until(`document.querySelector('[data-testid=confirm-delete]').disabled`),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=confirm-name]`), "scratch"),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-delete]`)),
		until(`location.hash === '#/clusters/`+cluster+`/topics'`),
		until(textContains(`[data-testid=topics]`, topic)+` && !`+textContains(`[data-testid=topics]`, "scratch")),
	)
	if _, err := admin.GetTopic(ctx, cluster, "scratch"); !client.IsNotFound(err) {
		t.Errorf("the deleted topic is still there: %v", err)
	}
	b.screenshot("topics")

	// A developer-read service account with its own key, made over REST.
	sa, err := admin.CreateServiceAccount(ctx, client.CreateServiceAccountRequest{Name: "analyst"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateRoleBinding(ctx, cluster, client.CreateRoleBindingRequest{ServiceAccountID: sa.ID, Role: client.RoleDeveloperRead}); err != nil {
		t.Fatal(err)
	}
	oldKey, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyRequest{ServiceAccountID: sa.ID, ClusterID: cluster})
	if err != nil {
		t.Fatal(err)
	}
	b.do("rotate the analyst's key",
		hash("#/api-keys"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rotate-`+oldKey.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="rotate-`+oldKey.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-secret] pre`)),
	)
	secret, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(`[data-testid=new-secret] pre`)))
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid=new-secret] strong').innerText.replace(/^New key (\S+)\.$/, '$1')`))
	if err != nil {
		t.Fatal(err)
	}
	// The console shows the new secret first, then revokes the old key.
	poll.Until(t, 15*time.Second, "the rotated key to be revoked", func() error {
		if _, err := admin.GetAPIKey(ctx, oldKey.ID); !client.IsNotFound(err) {
			return fmt.Errorf("the rotated key is still there: %v", err)
		}
		return nil
	})
	if k, err := admin.GetAPIKey(ctx, newKey); err != nil || k.ServiceAccountID != sa.ID || k.ClusterID != cluster {
		t.Errorf("the new key %q: %+v %v", newKey, k, err)
	}

	// Usage: the brokers report a window a second; wait until the API has
	// some ingress, then the chart has points.
	for {
		u, err := admin.GetUsage(ctx, client.UsageQuery{Metric: "ingress"})
		if err == nil && len(u.Items) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no ingress usage recorded: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.do("usage chart",
		hash("#/usage"),
		until(`document.querySelector('[data-testid=usage-chart]')?.dataset.points >= 1 && !!document.querySelector('[data-testid=usage-chart] canvas')`),
		until(textContains(`[data-testid=estimate]`, "projected")),
	)
	b.screenshot("usage")

	// The estimate rated the month: its draft invoice is listed, and its
	// CSV downloads.
	month := time.Now().UTC().Format("2006-01")
	b.do("download the month's invoice as CSV",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="csv-`+month+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="csv-`+month+`"]`)),
		until(textContains(`[data-testid=csv-done]`, "Downloaded invoice-"+month+".csv")),
	)
	b.do("create a budget alert and see it against the estimate",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=alert-name]`), "monthly-cap"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=alert-threshold]`), "1000000"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=alert-webhook]`), "https://203.0.113.10/eddy-budget"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-alert]`)),
		until(textContains(`[data-testid=alert-secret]`, "whsec_")),
		until(textContains(`[data-testid=alert-state-monthly-cap]`, "Below")),
	)
	if as, err := admin.ListBudgetAlerts(ctx, client.ListOptions{}); err != nil || len(as.Items) != 1 || as.Items[0].Name != "monthly-cap" || as.Items[0].Threshold != "1000000.00" {
		t.Errorf("budget alerts after the console's: %+v %v", as.Items, err)
	}
	b.screenshot("billing", `[aria-labelledby=invoices-title]`)
	b.do("delete the budget alert after confirming its name",
		chromedp.Click(chromedp.CSS(`[data-testid=delete-alert-monthly-cap]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=confirm-name]`), "monthly-cap"),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-delete]`)),
		until(textContains(`[data-testid=budget-alerts]`, "No budget alerts")),
	)

	// Quotas: the page shows the cluster's limits and what it uses; past
	// a lowered produce limit its clients are throttled, and the page says so.
	b.do("see the cluster's quotas",
		hash("#/clusters/"+cluster+"/quotas"),
		until(textContains(`[data-testid=quota-ingress]`, "Produce throughput")),
		until(`document.querySelector('[data-testid=throttled]')?.dataset.throttled === 'no'`),
	)
	if _, err := admin.UpdateCluster(ctx, cluster, client.UpdateClusterRequest{Limits: &limits.Limits{IngressMBps: 1}}); err != nil {
		t.Fatal(err)
	}
	// The producer writes without pause until the brokers report a
	// throttle: a produce-then-ask round trip managed about 1.07 MB/s on a
	// loaded machine, too close to the 1 MB/s limit to pass its burst.
	big := make([]byte, 256<<10)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan error, 1)
	go func() {
		var batch []*kgo.Record
		for range 16 {
			batch = append(batch, &kgo.Record{Value: big})
		}
		for loadCtx.Err() == nil {
			if err := producer.ProduceSync(loadCtx, batch...).FirstErr(); err != nil && loadCtx.Err() == nil {
				loadDone <- err
				return
			}
		}
		loadDone <- nil
	}()
	poll.Until(t, 2*time.Minute, "the brokers to report a throttle", func() error {
		select {
		case err := <-loadDone:
			loadDone <- err
			if err != nil {
				return fmt.Errorf("the producer failed: %w", err)
			}
		default:
		}
		q, err := admin.GetQuotaUsage(ctx, cluster)
		if err != nil || q.LastThrottledAt == nil {
			return fmt.Errorf("not throttled yet: %+v %v", q, err)
		}
		return nil
	})
	stopLoad()
	if err := <-loadDone; err != nil {
		t.Fatalf("the producer failed: %v", err)
	}
	b.do("see the throttling on the quotas page",
		until(`document.querySelector('[data-testid=throttled]')?.dataset.throttled === 'yes'`),
		until(textContains(`[data-testid=quota-ingress]`, "1.00 MB/s")),
	)
	b.screenshot("quotas")

	b.do("create a service account",
		hash("#/service-accounts"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sa-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=sa-name]`), "auditor"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-sa]`)),
		until(textContains(`[data-testid=service-accounts]`, "auditor")),
	)
	var auditor client.ServiceAccount
	sas, err := admin.ListServiceAccounts(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range sas.Items {
		if a.Name == "auditor" {
			auditor = a
		}
	}
	if auditor.ID == "" {
		t.Fatalf("the console made no service account auditor: %+v", sas.Items)
	}
	b.do("bind it a role and deny it writes by ACL on the cluster's access page",
		hash("#/clusters/"+cluster+"/access"),
		until(`!!document.querySelector('[data-testid=bind-sa] option[value="`+auditor.ID+`"]')`),
		choose(`[data-testid=bind-sa]`, auditor.ID),
		choose(`[data-testid=bind-role]`, client.RoleDeveloperRead),
		chromedp.Click(chromedp.CSS(`[data-testid=bind]`)),
		until(textContains(`[data-testid=role-bindings]`, auditor.ID)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=acl-principal]`), "User:"+auditor.ID),
		choose(`[data-testid=acl-permission]`, "deny"),
		choose(`[data-testid=acl-operation]`, "write"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=acl-resource]`), topic),
		chromedp.Click(chromedp.CSS(`[data-testid=create-acl]`)),
		until(textContains(`[data-testid=acls]`, "User:"+auditor.ID)),
	)
	if rbs, err := admin.ListRoleBindings(ctx, cluster, client.ListOptions{}); err != nil || !slices.ContainsFunc(rbs.Items, func(rb client.RoleBinding) bool {
		return rb.ServiceAccountID == auditor.ID && rb.Role == client.RoleDeveloperRead
	}) {
		t.Errorf("role bindings after the console's: %+v %v", rbs.Items, err)
	}
	if acls, err := admin.ListACLs(ctx, cluster, client.ListOptions{}); err != nil || !slices.ContainsFunc(acls.Items, func(a client.ACL) bool {
		return a.Principal == "User:"+auditor.ID && a.Permission == client.ACLDeny && a.Operation == "write" && a.ResourceName == topic
	}) {
		t.Errorf("ACLs after the console's: %+v %v", acls.Items, err)
	}
	b.do("find the topic's creation in the audit log",
		hash("#/audit"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=audit-action]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=audit-action]`), "role-binding.create"),
		chromedp.Click(chromedp.CSS(`[data-testid=audit-filter]`)),
		until(textContains(`[data-testid=audit]`, "role-binding.create")),
	)

	b.do("be refused a page the analyst's role does not allow, signed in with the rotated key",
		chromedp.Click(chromedp.CSS(`nav button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-id]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=key-id]`), newKey),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=key-secret]`), strings.TrimSpace(secret)),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav`)),
		hash("#/clusters/"+cluster+"/topics"),
		until(textContains(`[data-testid=refused]`, "only org admin service accounts may use the REST API")),
		// The same key may read records: its role allows that on the Kafka path.
		hash("#/clusters/"+cluster+"/messages/"+topic),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=browse-load]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=browse-load]`)),
		until(textContains(`[data-testid=records]`, "hello from the console")),
		chromedp.Click(chromedp.CSS(`[data-testid=produce]`)),
		until(textContains(`main [data-testid=refused]`, "role bindings and ACLs")),
	)

	b.do("a tenant sees no operator pages in the navigation and is refused the pool's URL",
		until(`!document.querySelector('nav a[href="#/pool"]') && !document.querySelector('nav a[href="#/autoscaler"]')`),
		hash("#/pool"),
		until(textContains(`main [data-testid=refused]`, "only the operator")),
		hash("#/autoscaler"),
		until(textContains(`main [data-testid=refused]`, "only the operator")),
	)

	// The operator: the pool's three brokers, the autoscaler's history
	// charted, the plans with their ceilings (one created and edited here).
	token, err := os.ReadFile(filepath.Join(d.dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	operator := client.New(d.api, client.WithToken(strings.TrimSpace(string(token))))
	b.do("sign in as the operator",
		chromedp.Click(chromedp.CSS(`nav button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=sign-in-operator]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in-operator]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=key-secret]`), strings.TrimSpace(string(token))),
		chromedp.Click(chromedp.CSS(`[data-testid=sign-in]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav a[href="#/pool"]`)),
	)
	b.do("see the pool's three brokers with the partitions they lead",
		chromedp.Click(chromedp.CSS(`nav a[href="#/pool"]`)),
		until(fmt.Sprintf(`document.querySelectorAll('[data-testid=broker-row] .tag').length === %d &&
			[...document.querySelectorAll('[data-testid=broker-row] .tag')].every(e => e.innerText === 'live')`, devBrokers)),
		until(fmt.Sprintf(`document.querySelector('[data-testid=pool-partitions-chart]')?.dataset.points == %d && !!document.querySelector('[data-testid=pool-partitions-chart] canvas')`, devBrokers)),
		until(textContains(`[data-testid=pool-summary]`, fmt.Sprintf("%d live brokers", devBrokers))),
	)
	// The table's partition counts are the pool's: the topic's partitions
	// are led somewhere.
	if pool, err := operator.ListBrokers(ctx); err != nil || len(pool.Items) != devBrokers {
		t.Errorf("pool %+v %v", pool.Items, err)
	} else {
		led := 0
		for _, br := range pool.Items {
			led += br.Partitions
		}
		if led == 0 {
			t.Errorf("no broker leads a partition: %+v", pool.Items)
		}
	}
	b.screenshot("pool")
	b.do("see the autoscaler's load against capacity and its decisions",
		chromedp.Click(chromedp.CSS(`nav a[href="#/autoscaler"]`)),
		until(`document.querySelector('[data-testid=autoscaler-chart]')?.dataset.points >= 3 && !!document.querySelector('[data-testid=autoscaler-chart] canvas')`),
		until(textContains(`[data-testid=decisions]`, "hold")),
		until(textContains(`[data-testid=autoscaler-latest]`, fmt.Sprintf("%d live brokers", devBrokers))),
	)
	b.screenshot("autoscaler")
	b.do("create a plan and lower one of its ceilings",
		chromedp.Click(chromedp.CSS(`nav a[href="#/plans"]`)),
		until(textContains(`[data-testid=plans]`, "standard")),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=plan-id]`), "gold"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=plan-name]`), "Gold"),
		chromedp.Click(chromedp.CSS(`[data-testid=create-plan]`)),
		until(textContains(`[data-testid=plans]`, "gold")),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('[data-testid=plan-row]')].find(r => r.innerText.includes('gold')).querySelector('button').click()`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=edit-plan-gold] [data-testid=ceiling-max_topics]`)),
		chromedp.Evaluate[chromedp.Void](`(e => { e.value = '50'; e.dispatchEvent(new Event('input', {bubbles: true})); })(document.querySelector('[data-testid=edit-plan-gold] [data-testid=ceiling-max_topics]'))`),
		chromedp.Click(chromedp.CSS(`[data-testid=edit-plan-gold] [data-testid=save-plan]`)),
		until(`!document.querySelector('[data-testid=edit-plan-gold]') && [...document.querySelectorAll('[data-testid=plan-row]')].some(r => r.innerText.includes('gold') && r.innerText.includes('\t50\t'))`),
	)
	if p, err := operator.GetPlan(ctx, "gold"); err != nil || p.Name != "Gold" || p.Ceilings.MaxTopics != 50 {
		t.Errorf("plan gold after the console's: %+v %v", p, err)
	}
	b.screenshot("plans")

	// The API reference renders the spec the handlers are tested against.
	b.do("read the API reference",
		chromedp.Navigate(d.api+"/docs"),
		until(textContains(`.swagger-ui .info .title`, "Eddy control plane API")),
		until(textContains(`.swagger-ui`, "/v1/audit-log")),
	)
}
