package main

// `eddy audit list`: an organisation's audit log (who changed what, when,
// from where, with what result, and who was refused), through the REST
// API.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newAuditCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "audit", Short: "Read the organisation's audit log (org admins; operators with --org)",
		Example: "  eddy audit list --since 24h\n  eddy audit list --result denied -o yaml"}
	f.register(cmd)
	var (
		org, since, until string
		limit             int
		filter            client.AuditFilter
	)
	list := &cobra.Command{
		Use: "list", Short: "List audit rows, newest first", Args: cobra.NoArgs,
		Example: "  eddy audit list --action topic.delete --since 2026-12-01T00:00:00Z\n" +
			"  eddy audit list --principal User:sa-... --since 1h\n" +
			"  eddy audit list --org org-... --token $EDDY_ADMIN_TOKEN --limit 1000",
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Parsed before anything is asked of the API.
			var err error
			if filter.Since, err = auditTime("--since", since); err != nil {
				return err
			}
			if filter.Until, err = auditTime("--until", until); err != nil {
				return err
			}
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1, got %d", limit)
			}
			switch filter.Result {
			case "", "ok", "failed", "denied":
			default:
				return fmt.Errorf("--result must be ok, failed or denied, not %q", filter.Result)
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			var rows []client.AuditEntry
			o := client.ListOptions{Limit: min(limit, 1000)}
			for len(rows) < limit {
				p, err := cl.ListAuditLog(cmd.Context(), org, filter, o)
				if err != nil {
					return err
				}
				rows = append(rows, p.Items...)
				if p.NextCursor == "" {
					break
				}
				o.Cursor = p.NextCursor
			}
			rows = rows[:min(len(rows), limit)]
			var table [][]string
			for _, r := range rows {
				resource := r.ResourceType
				if r.ResourceName != "" {
					resource += " " + r.ResourceName
				}
				table = append(table, []string{r.At.Local().Format(time.RFC3339), r.Principal, r.Channel, r.Action, resource,
					r.Result, r.Detail, strconv.Itoa(r.Count), r.ClusterID, r.Source})
			}
			return f.print(cmd.OutOrStdout(), rows, []string{"TIME", "PRINCIPAL", "VIA", "ACTION", "RESOURCE", "RESULT", "DETAIL", "COUNT", "CLUSTER", "SOURCE"}, table)
		},
	}
	fs := list.Flags()
	fs.StringVar(&org, "org", "", "organisation id (operators; default: the credentials' own)")
	fs.StringVar(&filter.ClusterID, "cluster-id", "", "only rows of this cluster")
	fs.StringVar(&filter.Principal, "principal", "", `only rows of this principal ("User:sa-..." or "operator")`)
	fs.StringVar(&filter.Action, "action", "", "only this action (topic.create, acl.delete, Produce, ...)")
	fs.StringVar(&filter.Result, "result", "", "only ok, failed or denied rows")
	fs.StringVar(&since, "since", "", "rows at or after this time: RFC 3339, or a duration ago (24h)")
	fs.StringVar(&until, "until", "", "rows before this time: RFC 3339, or a duration ago")
	fs.IntVar(&limit, "limit", 100, "most rows to print")
	cmd.AddCommand(list)
	return cmd
}

// auditTime reads an RFC 3339 time or a duration before now.
func auditTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time or a duration such as 24h, not %q", flag, v)
}
