package broker

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPITableMatchesFiles keeps the version table (apis.go) and the
// handler files from disagreeing: each API in the table has exactly one
// file <key>_<api>.go, named for the API, whose opening comment states the
// table's range in a "Versions: a-b." line, and each such file has an
// entry in the table.
func TestAPITableMatchesFiles(t *testing.T) {
	paths, err := filepath.Glob("[0-9][0-9]_*.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[int16][]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		key, err := strconv.Atoi(p[:2])
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		files[int16(key)] = append(files[int16(key)], p)
	}
	for key, fs := range files {
		if _, ok := apis[key]; !ok {
			for _, f := range fs {
				t.Errorf("%s: API key %d has no entry in the apis table (apis.go)", f, key)
			}
		}
	}
	for key, a := range apis {
		name := kmsg.NameForKey(key)
		fs := files[key]
		if len(fs) != 1 {
			t.Errorf("API %d (%s): want exactly one file %02d_<api>.go, found %d: %v", key, name, key, len(fs), fs)
			continue
		}
		f := fs[0]
		if got := strings.ReplaceAll(strings.TrimSuffix(f[3:], ".go"), "_", ""); got != strings.ToLower(name) {
			t.Errorf("%s: API %d is %s; name the file %02d_<%s in snake case>.go", f, key, name, key, name)
		}
		lo, hi, err := headerVersions(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if lo != a.min || hi != a.max {
			t.Errorf("%s: the header says Versions: %d-%d, the apis table (apis.go) %d-%d", f, lo, hi, a.min, a.max)
		}
	}
}

var versionsLine = regexp.MustCompile(`^Versions: (\d+)-(\d+)\.$`)

// headerVersions parses the one "Versions: a-b." line of the comment that
// opens a file: the first comment after the package clause and imports,
// before any declaration.
func headerVersions(path string) (lo, hi int16, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return 0, 0, err
	}
	if len(f.Comments) == 0 {
		return 0, 0, fmt.Errorf("no opening comment")
	}
	first := f.Comments[0]
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			continue
		}
		if d.Pos() < first.Pos() {
			return 0, 0, fmt.Errorf("the opening comment must come before the first declaration")
		}
		break
	}
	var found [][]string
	for _, line := range strings.Split(first.Text(), "\n") {
		if m := versionsLine.FindStringSubmatch(line); m != nil {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return 0, 0, fmt.Errorf("the opening comment has %d lines of the form %q, want 1", len(found), "Versions: a-b.")
	}
	a, errA := strconv.ParseInt(found[0][1], 10, 16)
	b, errB := strconv.ParseInt(found[0][2], 10, 16)
	if errA != nil || errB != nil {
		return 0, 0, fmt.Errorf("versions %s-%s: not 16-bit numbers", found[0][1], found[0][2])
	}
	return int16(a), int16(b), nil
}

// docTable returns the rows of the markdown table under the heading
// section of docs/kafka-compatibility.md, each row's cells trimmed,
// after checking that its header row is header.
func docTable(t *testing.T, section string, header ...string) [][]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "kafka-compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n## "+section+"\n")
	if !ok {
		t.Fatalf("docs/kafka-compatibility.md has no section %q", section)
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	var rows [][]string
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the first table only
			}
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 || !slices.Equal(rows[0], header) {
		t.Fatalf("section %q: the table's header is not | %s |", section, strings.Join(header, " | "))
	}
	return rows[2:] // after the header and its |---| line
}

// TestCompatibilityDocAPIs: docs/kafka-compatibility.md lists every API
// key the broker advertises in ApiVersions, with Kafka's name and the same
// version range, and nothing else.
func TestCompatibilityDocAPIs(t *testing.T) {
	documented := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, row := range docTable(t, "APIs", "key", "name", "min", "max", "notes") {
		if len(row) != 5 {
			t.Fatalf("API row %q has %d cells, want 5", row, len(row))
		}
		var n [3]int
		for i, c := range []string{row[0], row[2], row[3]} {
			v, err := strconv.Atoi(c)
			if err != nil {
				t.Fatalf("API row %q: %q is not a number", row, c)
			}
			n[i] = v
		}
		key := int16(n[0])
		if _, dup := documented[key]; dup {
			t.Errorf("API key %d is documented twice", key)
		}
		if want := kmsg.NameForKey(key); row[1] != want {
			t.Errorf("API key %d is documented as %q, Kafka's name is %q", key, row[1], want)
		}
		documented[key] = kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: int16(n[1]), MaxVersion: int16(n[2])}
	}
	for _, k := range supportedAPIs() {
		d, ok := documented[k.ApiKey]
		switch {
		case !ok:
			t.Errorf("API key %d (%s, versions %d-%d) is advertised but not documented", k.ApiKey, kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion)
		case d.MinVersion != k.MinVersion || d.MaxVersion != k.MaxVersion:
			t.Errorf("API key %d (%s) is documented as versions %d-%d, advertised as %d-%d", k.ApiKey, kmsg.NameForKey(k.ApiKey), d.MinVersion, d.MaxVersion, k.MinVersion, k.MaxVersion)
		}
		delete(documented, k.ApiKey)
	}
	for key := range documented {
		t.Errorf("API key %d (%s) is documented but not advertised", key, kmsg.NameForKey(key))
	}
}

// TestCompatibilityDocTopicConfigs: the topic config table names every
// config internal/topicconfig knows, with its default, and nothing else.
func TestCompatibilityDocTopicConfigs(t *testing.T) {
	documented := map[string]string{}
	for _, row := range docTable(t, "Topic configs", "config", "default", "status", "notes") {
		if len(row) != 4 || (row[2] != "supported" && row[2] != "ignored") {
			t.Fatalf("topic config row %q: want 4 cells, status supported or ignored", row)
		}
		documented[row[0]] = row[1]
	}
	for _, d := range topicconfig.Defs() {
		def, ok := documented[d.Name]
		switch {
		case !ok:
			t.Errorf("topic config %s is not documented", d.Name)
		case def != d.Default:
			t.Errorf("topic config %s is documented with default %q, its default is %q", d.Name, def, d.Default)
		}
		delete(documented, d.Name)
	}
	for name := range documented {
		t.Errorf("topic config %s is documented but unknown", name)
	}
}
