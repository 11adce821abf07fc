// Command image builds Eddy's container image without a container daemon
// or a base image: an empty image plus one layer holding the static eddy
// binary, an /etc/passwd naming the non-root user it runs as (uid 65532)
// and the build machine's CA certificates (for S3 and Postgres over TLS).
// It writes the image as an OCI image layout (<out>/) and the same layout
// as one tar (<out>.tar, what `skopeo copy oci-archive:` or `podman load`
// read), and prints the image's digest.
//
// The build is reproducible: the binary is built with CGO_ENABLED=0,
// -trimpath and an empty build id, and every file, the layer and the
// config carry one fixed time (SOURCE_DATE_EPOCH, else the commit's time),
// so the same tree and toolchain give the same digest.
//
//	go run ./image -repo .. -out ../bin/eddy-image
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as: distroless's "nonroot", which no host
// account usually shares.
const (
	uid  = 65532
	user = "nonroot"
)

// options is one build.
type options struct {
	repo     string // root of the eddy module
	out      string // layout directory; the tar is out+".tar"
	version  string // org.opencontainers.image.version and eddy --version
	revision string // org.opencontainers.image.revision (a commit)
	source   string // org.opencontainers.image.source
	arch     string // GOARCH of the binary and the image
	caCerts  string // PEM bundle copied to /etc/ssl/certs/ca-certificates.crt
	mtime    time.Time
}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", "..", "root of the eddy module")
	flag.StringVar(&o.out, "out", "../bin/eddy-image", "OCI layout directory to write (and <out>.tar)")
	flag.StringVar(&o.version, "version", "", "image and binary version (default: git describe)")
	flag.StringVar(&o.revision, "revision", "", "source revision (default: git rev-parse HEAD)")
	flag.StringVar(&o.source, "source", "https://github.com/eddy-streams/eddy", "source repository URL")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "target architecture (GOARCH)")
	flag.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle to include")
	flag.Parse()
	ctx := context.Background()
	if err := o.defaults(ctx); err != nil {
		fatal(err)
	}
	digest, err := build(ctx, o)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("%s %s\n", o.out+".tar", digest)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}

// defaults fills version, revision and mtime from git and
// SOURCE_DATE_EPOCH; outside a git checkout they fall back to "dev", ""
// and the Unix epoch.
func (o *options) defaults(ctx context.Context) error {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = o.repo
		b, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if o.version == "" {
		if o.version = git("describe", "--tags", "--always", "--dirty"); o.version == "" {
			o.version = "dev"
		}
	}
	if o.revision == "" {
		o.revision = git("rev-parse", "HEAD")
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = git("log", "-1", "--format=%ct")
	}
	if epoch == "" {
		epoch = "0"
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
	}
	o.mtime = time.Unix(sec, 0).UTC()
	return nil
}

// build builds the binary and the image and writes both outputs; it
// returns the image's digest.
func build(ctx context.Context, o options) (v1.Hash, error) {
	tmp, err := os.MkdirTemp("", "eddy-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "eddy")
	if err := buildBinary(ctx, o, bin); err != nil {
		return v1.Hash{}, err
	}
	img, err := image(o, bin)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(o.out); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.version,
	})); err != nil {
		return v1.Hash{}, err
	}
	return digest, tarDir(o.out, o.out+".tar", o.mtime)
}

// buildBinary builds a static eddy for linux/o.arch into bin.
func buildBinary(ctx context.Context, o options, bin string) error {
	ldflags := fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.revision=%s", o.version, o.revision)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/eddy")
	cmd.Dir = o.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch, "GOFLAGS=-buildvcs=false")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/eddy: %w", err)
	}
	return nil
}

// image is the empty image plus one layer, with an OCI config that runs
// /eddy as the non-root user.
func image(o options, bin string) (v1.Image, error) {
	eddy, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(o.caCerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	files := []file{
		{name: "eddy", mode: 0o755, data: eddy},
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", user, uid, uid, user, user))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", user, uid))},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs},
		{name: "home/", mode: 0o755},
		{name: "home/" + user + "/", mode: 0o700, owner: uid},
		{name: "tmp/", mode: 0o1777},
	}
	layerTar, err := tarFiles(files, o.mtime)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: o.mtime},
			CreatedBy: "deploy/image: eddy " + o.version,
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = o.arch, "linux"
	cfg.Created = v1.Time{Time: o.mtime}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{"/eddy"},
		WorkingDir: "/home/" + user,
		Env: []string{
			"PATH=/",
			"HOME=/home/" + user,
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "eddy",
			"org.opencontainers.image.source":   o.source,
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.revision": o.revision,
			"org.opencontainers.image.created":  o.mtime.Format(time.RFC3339),
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// file is one entry of the layer; a name ending in / is a directory.
type file struct {
	name  string
	mode  int64
	owner int
	data  []byte
}

// tarFiles writes files as a tar, in order, every entry at mtime.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX,
			Uid: f.owner, Gid: f.owner, Typeflag: tar.TypeReg, Size: int64(len(f.data)),
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir writes the files under dir as the tar out, sorted by name and at
// mtime, so that the tar is as reproducible as the image.
func tarDir(dir, out string, mtime time.Time) error {
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			files = append(files, file{name: rel + "/", mode: 0o755})
			return nil
		}
		if !d.Type().IsRegular() {
			return errors.New("image: unexpected file in the layout: " + path)
		}
		data, err := os.ReadFile(path)
		files = append(files, file{name: rel, mode: 0o644, data: data})
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	b, err := tarFiles(files, mtime)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
