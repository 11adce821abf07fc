package main

import (
	"errors"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/fsck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// newFsckCmd is `eddy fsck`: check the index in Postgres against the
// bucket. It exits non-zero if any referenced object is missing or
// shorter than its index rows say.
func newFsckCmd() *cobra.Command {
	var (
		databaseURL string
		dataDir     string
		orphanAge   time.Duration
		strict      bool
		objs        objstoreConfig
	)
	cmd := &cobra.Command{
		Use: "fsck", Example: "  eddy fsck --database-url postgres://... --data-dir .data\n" +
			"  eddy fsck --database-url postgres://... --objstore s3 --s3-bucket eddy-data --strict",
		Short: "Check that every indexed object exists in the bucket, and list unreferenced ones",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if databaseURL == "" {
				return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
			}
			bkt, err := objs.open(ctx, dataDir, prometheus.NewRegistry())
			if err != nil {
				return err
			}
			st, err := store.Open(ctx, databaseURL, 2)
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := fsck.Check(ctx, st, bkt, orphanAge)
			if err != nil {
				return err
			}
			rep.Print(cmd.OutOrStdout())
			if !rep.OK() {
				return errors.New("fsck: index and bucket are inconsistent")
			}
			if strict && !rep.Clean() {
				return errors.New("fsck: unreferenced objects remain")
			}
			return nil
		},
	}
	fs := cmd.Flags()
	objs.RegisterFlags(fs)
	fs.StringVar(&databaseURL, "database-url", "", "Postgres URL")
	fs.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory (the fs object store defaults to <data-dir>/objects)")
	fs.DurationVar(&orphanAge, "orphan-age", 10*time.Minute, "ignore objects without an objects row younger than this (flushes in flight)")
	fs.BoolVar(&strict, "strict", false, "also fail if unreferenced or orphaned objects remain")
	return cmd
}
