package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDocsUpToDate renders the pages with tfplugindocs into a temporary
// directory and fails when the committed terraform/docs differs from them
// (a page stale, missing or documenting nothing), or when a resource page
// lacks its import section or its example.
func TestDocsUpToDate(t *testing.T) {
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		if _, err := exec.LookPath("terraform"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("no terraform binary on PATH: CI checks the docs")
			}
			t.Skip("no terraform binary on PATH (make deps installs one)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "docs")
	if err := generate(ctx, "..", out); err != nil {
		t.Fatal(err)
	}
	want := tree(t, out)
	got := tree(t, filepath.Join("..", "docs"))
	if len(want) < 1+8+4 { // the provider, its resources and data sources
		t.Fatalf("only %d pages rendered", len(want))
	}
	for rel, w := range want {
		g, ok := got[rel]
		switch {
		case !ok:
			t.Errorf("docs/%s is missing: run go generate ./terraform/...", rel)
		case !bytes.Equal(g, w):
			t.Errorf("docs/%s is stale: run go generate ./terraform/...", rel)
		}
		if strings.HasPrefix(rel, "resources/") && (!bytes.Contains(w, []byte("## Import")) || !bytes.Contains(w, []byte("## Example Usage"))) {
			t.Errorf("docs/%s has no import section or no example", rel)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("docs/%s documents nothing the provider has: run go generate ./terraform/...", rel)
		}
	}
}

// tree reads every file under dir, by slash path relative to it.
func tree(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
