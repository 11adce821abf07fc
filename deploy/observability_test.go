package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// repo is the root of the eddy module.
const repo = ".."

// metricDef finds the metric names Eddy's code registers: Name fields of
// prometheus *Opts, NewDesc for collectors, and the tiered cache's and the
// autoscaler's small constructors (counter(...), g(...)).
var metricDef = regexp.MustCompile(`(?:Name:\s*|NewDesc\(|counter\(|\bgauge\(|\bg\()"(eddy_[a-z0-9_]+)"`)

// metricRef finds metric names in an expression.
var metricRef = regexp.MustCompile(`\beddy_[a-z0-9_]+`)

// eachSource calls fn with every Go file of the main module that is not
// a test (the code that registers metrics), skipping deploy/ itself.
func eachSource(t *testing.T, fn func(path string, src []byte)) {
	t.Helper()
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "deploy", "node_modules", ".data", ".git", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			fn(path, b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exported returns every eddy_ metric the Go code registers.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	eachSource(t, func(_ string, src []byte) {
		for _, m := range metricDef.FindAllSubmatch(src, -1) {
			names[string(m[1])] = true
		}
	})
	if len(names) < 40 {
		t.Fatalf("found only %d metrics in the code: the pattern no longer matches how metrics are declared", len(names))
	}
	return names
}

// known: name is exported, or is a histogram's series of an exported one.
func known(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// balanced is the light syntax check of a PromQL expression: brackets
// nest and close, quotes close.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var quote rune
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return quote == 0 && len(stack) == 0
}

// clashing: Prometheus's own target labels an Eddy label must not reuse.
var clashing = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\([^)]*\bcluster\b|[{,]\s*cluster\s*[=!~]`)

// checkExpr checks one expression of a dashboard or an alert.
func checkExpr(t *testing.T, names map[string]bool, where, expr string) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
		return
	}
	if !balanced(expr) {
		t.Errorf("%s: unbalanced brackets or quotes in %q", where, expr)
	}
	if clashing.MatchString(expr) {
		t.Errorf("%s: label cluster clashes with Prometheus's target label; Eddy's is virtual_cluster: %q", where, expr)
	}
	for _, m := range metricRef.FindAllString(expr, -1) {
		if !known(names, m) {
			t.Errorf("%s: %s is not a metric Eddy exports", where, m)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// TestDashboards: each dashboard parses, has a unique uid, and every query
// names only metrics Eddy exports. The six views of the pool are there.
func TestDashboards(t *testing.T) {
	names := exported(t)
	files, err := filepath.Glob("grafana/*.json")
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
		queries := 0
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", f, p.Title)
				}
				for _, tg := range p.Targets {
					checkExpr(t, names, f+": "+p.Title, tg.Expr)
					queries++
				}
			}
		}
		walk(d.Panels)
		if queries == 0 {
			t.Errorf("%s: no queries", f)
		}
	}
	for _, uid := range []string{"eddy-pool", "eddy-tenants", "eddy-object-store", "eddy-postgres", "eddy-autoscaler", "eddy-billing"} {
		if uids[uid] == "" {
			t.Errorf("no dashboard %s", uid)
		}
	}
}

// ruleFile is a Prometheus rule file; strict decoding rejects fields
// Prometheus does not know.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestAlerts: the rule file decodes strictly, every expression names only
// exported metrics and looks like PromQL, and every alert has a severity,
// a summary and a runbook in docs/operations.md that its runbook_url
// points at.
func TestAlerts(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("prometheus/eddy-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repo, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, l := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(l, "### "); ok {
			headings[strings.TrimSpace(h)] = true
		}
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert (recording rules belong elsewhere)", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			checkExpr(t, names, r.Alert, r.Expr)
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if !headings[r.Alert] {
				t.Errorf("%s: no runbook: add a \"### %s\" section to docs/operations.md", r.Alert, r.Alert)
			}
			if want := "docs/operations.md#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("%s: runbook_url %q, want one ending in %s", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerts")
	}
}

// labelList finds label name lists in metric declarations.
var labelList = regexp.MustCompile(`\[\]string\{([^}]*)\}`)

// TestNoClusterLabel: no metric of Eddy's has a label named cluster, which
// Prometheus setups use for the scraped cluster (virtual clusters are
// virtual_cluster).
func TestNoClusterLabel(t *testing.T) {
	eachSource(t, func(path string, src []byte) {
		if !strings.Contains(string(src), "prometheus.") {
			return
		}
		for _, m := range labelList.FindAllSubmatch(src, -1) {
			if strings.Contains(string(m[1]), `"cluster"`) {
				t.Errorf("%s: label list {%s} has a label cluster; name it virtual_cluster", path, m[1])
			}
		}
	})
}
