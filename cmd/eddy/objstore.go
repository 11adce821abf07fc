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

func (c *objstoreConfig) registerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.kind, "objstore", "fs", "object store driver: fs (a local directory) or s3")
	fs.StringVar(&c.dir, "objstore-dir", "", "directory of the fs object store (default: <data-dir>/objects)")
	c.s3.RegisterFlags(fs)
}

func (c *objstoreConfig) open(ctx context.Context, dataDir string, reg prometheus.Registerer) (bucket.Bucket, error) {
	var (
		b   bucket.Bucket
		err error
	)
	switch c.kind {
	case "fs":
		dir := c.dir
		if dir == "" {
			dir = filepath.Join(dataDir, "objects")
		}
		b, err = fsbucket.Open(dir)
	case "s3":
		if err := c.s3.Validate(); err != nil {
			return nil, err
		}
		b, err = s3bucket.New(ctx, c.s3)
	default:
		return nil, fmt.Errorf("--objstore must be fs or s3, not %q", c.kind)
	}
	if err != nil {
		return nil, err
	}
	return bucket.Instrument(b, reg, c.kind), nil
}
