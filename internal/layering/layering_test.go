package layering

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/eddy-streams/eddy"

// pkg is what `go list -json` says of one package of the module.
type pkg struct {
	ImportPath   string
	Imports      []string // direct imports of its non-test files
	Deps         []string // everything its non-test files depend on
	TestImports  []string
	XTestImports []string
}

// rule forbids packages that from matches to import (or, with deps, to
// depend on) packages that to matches. Paths are relative to the module
// ("tiered/gc"), third-party ones full.
type rule struct {
	name     string
	from, to func(path string) bool
	deps     bool
}

func under(dirs ...string) func(string) bool {
	return func(p string) bool {
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
}

func not(f func(string) bool) func(string) bool { return func(p string) bool { return !f(p) } }

var rules = []rule{
	{name: "only internal/store holds SQL", from: not(under("internal/store", "migrations", "internal/pgtest", "internal/pgserver")),
		to: under("github.com/jackc/pgx")},
	{name: "tiered depends on neither plane", from: under("tiered"), to: under("data-plane", "control-plane"), deps: true},
	{name: "the data plane does not depend on the control plane", from: under("data-plane"), to: under("control-plane"), deps: true},
	{name: "the store and the batch parser are leaves", from: under("internal/store", "internal/batch"),
		to: under("data-plane", "control-plane", "tiered", "api", "cmd"), deps: true},
}

// testExceptions are the imports of test files that break a rule on
// purpose, "importer -> imported", with the reason.
var testExceptions = map[string]string{
	"tiered/compact -> data-plane/leader":          "its tests write real objects with the writer (internal/tieredtest's Manager takes a leader.Config)",
	"tiered/gc -> data-plane/leader":               "its tests write real objects with the writer and read them back through it",
	"data-plane/leader -> control-plane/placement": "its tests place partitions with a real placement round",
	"data-plane/broker -> control-plane/identity":  "its tests sign OAUTHBEARER tokens with the control plane's issuer",
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// check returns one line per rule broken, naming the offending import
// (and, for a dependency, the chain that leads to it), and the exceptions
// that matched no import.
func check(pkgs []pkg) (broken, unused []string) {
	byPath := map[string]pkg{}
	for _, p := range pkgs {
		byPath[rel(p.ImportPath)] = p
	}
	used := map[string]bool{}
	for _, p := range pkgs {
		from := rel(p.ImportPath)
		for _, r := range rules {
			if !r.from(from) {
				continue
			}
			for _, imp := range p.Imports {
				if r.to(rel(imp)) {
					broken = append(broken, fmt.Sprintf("%s: %s imports %s", r.name, from, rel(imp)))
				}
			}
			if r.deps {
				for _, d := range p.Deps {
					if r.to(rel(d)) && !slices.Contains(p.Imports, d) {
						broken = append(broken, fmt.Sprintf("%s: %s depends on %s (%s)", r.name, from, rel(d),
							strings.Join(chain(byPath, from, rel(d)), " -> ")))
					}
				}
			}
			for _, imp := range append(slices.Clone(p.TestImports), p.XTestImports...) {
				if !r.to(rel(imp)) || slices.Contains(p.Imports, imp) {
					continue
				}
				key := from + " -> " + rel(imp)
				if _, ok := testExceptions[key]; ok {
					used[key] = true
					continue
				}
				broken = append(broken, fmt.Sprintf("%s: a test of %s imports %s", r.name, from, rel(imp)))
			}
		}
	}
	for key := range testExceptions {
		if !used[key] {
			unused = append(unused, key)
		}
	}
	slices.Sort(broken)
	broken = slices.Compact(broken)
	slices.Sort(unused)
	return broken, unused
}

// chain returns a shortest import chain from package from to to through
// the module's packages.
func chain(byPath map[string]pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range byPath[p].Imports {
			next := rel(imp)
			if _, seen := prev[next]; seen {
				continue
			}
			prev[next] = p
			if next == to {
				var out []string
				for q := to; q != ""; q = prev[q] {
					out = append(out, q)
				}
				slices.Reverse(out)
				return out
			}
			queue = append(queue, next)
		}
	}
	return []string{from, "?", to}
}

func listModule(t *testing.T) []pkg {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages of %s; is the test running inside the module?", len(pkgs), module)
	}
	return pkgs
}

// TestLayering checks the rules on the module as it is.
func TestLayering(t *testing.T) {
	broken, unused := check(listModule(t))
	for _, b := range broken {
		t.Error(b)
	}
	for _, key := range unused {
		t.Errorf("test exception %q matches no import any more: remove it", key)
	}
}

// TestCheck shows each rule failing on a module made up for it, so that
// TestLayering passing means something.
func TestCheck(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	for _, tc := range []struct {
		name string
		pkgs []pkg
		want []string
	}{
		{"sql outside the store", []pkg{
			{ImportPath: m("api"), Imports: []string{"github.com/jackc/pgx/v5"}},
			{ImportPath: m("internal/store"), Imports: []string{"github.com/jackc/pgx/v5/pgxpool"}},
		}, []string{"only internal/store holds SQL: api imports github.com/jackc/pgx/v5"}},
		{"a test with sql", []pkg{
			{ImportPath: m("data-plane/broker"), XTestImports: []string{"github.com/jackc/pgx/v5"}},
		}, []string{"only internal/store holds SQL: a test of data-plane/broker imports github.com/jackc/pgx/v5"}},
		{"tiered above the data plane", []pkg{
			{ImportPath: m("tiered/gc"), Imports: []string{m("data-plane/leader")}, Deps: []string{m("data-plane/leader")}},
		}, []string{"tiered depends on neither plane: tiered/gc imports data-plane/leader"}},
		{"tiered above the data plane, through a helper", []pkg{
			{ImportPath: m("tiered/gc"), Imports: []string{m("internal/x")}, Deps: []string{m("internal/x"), m("data-plane/wal")}},
			{ImportPath: m("internal/x"), Imports: []string{m("data-plane/wal")}, Deps: []string{m("data-plane/wal")}},
		}, []string{"tiered depends on neither plane: tiered/gc depends on data-plane/wal (tiered/gc -> internal/x -> data-plane/wal)"}},
		{"data plane above the control plane", []pkg{
			{ImportPath: m("data-plane/broker"), Imports: []string{m("control-plane/placement")}, Deps: []string{m("control-plane/placement")}},
		}, []string{"the data plane does not depend on the control plane: data-plane/broker imports control-plane/placement"}},
		{"a test reaching up without a reason", []pkg{
			{ImportPath: m("tiered/jobs"), XTestImports: []string{m("data-plane/leader")}},
		}, []string{"tiered depends on neither plane: a test of tiered/jobs imports data-plane/leader"}},
		{"a test reaching up with a reason", []pkg{
			{ImportPath: m("tiered/gc"), XTestImports: []string{m("data-plane/leader")}},
		}, nil},
		{"the store above a plane", []pkg{
			{ImportPath: m("internal/store"), Imports: []string{m("data-plane/group")}, Deps: []string{m("data-plane/group")}},
		}, []string{"the store and the batch parser are leaves: internal/store imports data-plane/group"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken, _ := check(tc.pkgs)
			if !slices.Equal(broken, tc.want) {
				t.Errorf("broken:\n  %s\nwant:\n  %s", strings.Join(broken, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
