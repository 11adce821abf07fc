package main

import (
	"errors"
	"log/slog"

	"github.com/eddy-streams/eddy/migrations"
	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use: "migrate", Example: "  eddy migrate --database-url postgres://eddy@db/eddy",
		Short: "Apply the database schema (idempotent)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return errors.New("--database-url (or EDDY_DATABASE_URL) is required")
			}
			v, err := migrations.Apply(cmd.Context(), url)
			if err != nil {
				return err
			}
			slog.Info("schema is up to date", "version", v)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "database-url", "", "Postgres URL")
	return cmd
}
