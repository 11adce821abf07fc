package broker

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
