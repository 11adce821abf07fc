package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	eddy "github.com/eddy-streams/eddy/terraform/provider"
)

// TestDocsUpToDate fails when terraform/docs differs from what the
// provider's schema and examples generate: run `go generate
// ./terraform/...` and commit the result.
func TestDocsUpToDate(t *testing.T) {
	pages, err := generate(eddy.New("docs")(), filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 1+5+3 { // the provider, its resources and data sources
		t.Fatalf("only %d pages generated", len(pages))
	}
	dir := filepath.Join("..", "docs")
	for rel, want := range pages {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil || string(got) != string(want) {
			t.Errorf("docs/%s is stale or missing (%v): run go generate ./terraform/...", rel, err)
		}
	}
	for _, sub := range []string{"resources", "data-sources"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.md"))
		for _, f := range files {
			rel := sub + "/" + filepath.Base(f)
			if _, ok := pages[rel]; !ok {
				t.Errorf("docs/%s documents nothing the provider has: run go generate ./terraform/...", rel)
			}
		}
	}
	// Every resource page has an import section and every attribute a
	// description.
	for rel, b := range pages {
		if filepath.Dir(rel) == "resources" && !bytes.Contains(b, []byte("## Import")) {
			t.Errorf("docs/%s has no import section", rel)
		}
		if bytes.Contains(b, []byte(") \n")) {
			t.Errorf("docs/%s has an attribute without a description", rel)
		}
	}
}
