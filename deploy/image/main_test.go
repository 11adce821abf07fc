package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestImage builds the image as `make image` does, into a temporary
// directory, and checks what a cluster relies on: a non-root user, /eddy
// as the entrypoint, the OCI labels, a binary that runs, and the same
// digest from a second build of the same tree.
func TestImage(t *testing.T) {
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		t.Skip("no CA bundle on this machine:", err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	o := options{
		repo: "../..", out: filepath.Join(dir, "eddy-image"),
		version: "v0.0.0-test", revision: "0123456789abcdef", source: "https://github.com/eddy-streams/eddy",
		arch: runtime.GOARCH, caCerts: "/etc/ssl/certs/ca-certificates.crt",
		mtime: time.Unix(1700000000, 0).UTC(),
	}
	digest, err := build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.out + ".tar"); err != nil {
		t.Errorf("no OCI archive: %v", err)
	}

	idx, err := layout.ImageIndexFromPath(o.out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(digest)
	if err != nil {
		t.Fatalf("layout has no image %s: %v", digest, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Config.User; u == "" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root") {
		t.Errorf("user %q: the image must run as non-root", u)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if ep := cfg.Config.Entrypoint; len(ep) != 1 || ep[0] != "/eddy" {
		t.Errorf("entrypoint %q, want [/eddy]", ep)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cfg.OS != "linux" || cfg.Architecture != o.arch {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	bin := filepath.Join(dir, "eddy")
	seen := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = true
		if !h.ModTime.Equal(o.mtime) {
			t.Errorf("%s: mtime %v, want the fixed %v", h.Name, h.ModTime, o.mtime)
		}
		if h.Name == "eddy" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"eddy", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"} {
		if !seen[name] {
			t.Errorf("the layer has no %s", name)
		}
	}
	if o.arch == runtime.GOARCH && runtime.GOOS == "linux" {
		out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("eddy --version: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != "eddy v0.0.0-test (0123456789abcdef)" {
			t.Errorf("eddy --version printed %q", got)
		}
	}

	o.out = filepath.Join(dir, "again")
	again, err := build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if again != digest {
		t.Errorf("two builds of one tree: digests %s and %s; the build is not reproducible", digest, again)
	}
}
