package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
	"github.com/eddy-streams/eddy/tiered/s3bucket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// objstoreConfig chooses and configures the object store.
type objstoreConfig struct {
	kind string
	dir  string
	s3   s3bucket.Config
}

// RegisterFlags registers --objstore, --objstore-dir and the --s3-* flags.
func (c *objstoreConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.kind, "objstore", "fs", "object store driver: fs (a local directory) or s3")
	fs.StringVar(&c.dir, "objstore-dir", "", "directory of the fs object store (default: <data-dir>/objects)")
	c.s3.RegisterFlags(fs)
}

// Validate checks the chosen driver's settings.
func (c *objstoreConfig) Validate() error {
	switch c.kind {
	case "fs":
		return nil
	case "s3":
		return c.s3.Validate()
	}
	return fmt.Errorf("--objstore must be fs or s3, not %q", c.kind)
}

// open validates c and opens the bucket; the fs store defaults to
// <dataDir>/objects.
func (c *objstoreConfig) open(ctx context.Context, dataDir string, reg prometheus.Registerer) (bucket.Bucket, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		b   bucket.Bucket
		err error
	)
	if c.kind == "s3" {
		b, err = s3bucket.New(ctx, c.s3)
	} else {
		dir := c.dir
		if dir == "" {
			dir = filepath.Join(dataDir, "objects")
		}
		b, err = fsbucket.Open(dir)
	}
	if err != nil {
		return nil, err
	}
	return bucket.Instrument(b, reg, c.kind), nil
}
