package main

// `eddy billing usage|invoices|estimate`: what an organisation used and
// what it costs, through the REST API's billing routes.

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newBillingCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "billing", Example: "  eddy billing estimate\n" +
		"  eddy billing usage --granularity hour --from 2026-01-01 --to 2026-01-02", Short: "Show usage, invoices and the running month's cost estimate"}
	f.register(cmd)

	var (
		q        client.UsageQuery
		from, to string
	)
	usage := &cobra.Command{
		Use: "usage", Example: "  eddy billing usage\n" +
			"  eddy billing usage --cluster vc-... --metric ingress --granularity hour --from 2026-01-01 --to 2026-01-02", Short: "Metered usage by cluster, metric and period (default: this month, per day)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			for _, p := range []struct {
				flag, v string
				t       *time.Time
			}{{"from", from, &q.From}, {"to", to, &q.To}} {
				if p.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, p.v)
				if err != nil {
					if t, err = time.Parse(time.DateOnly, p.v); err != nil {
						return fmt.Errorf("--%s: want an RFC 3339 time or YYYY-MM-DD, not %q", p.flag, p.v)
					}
				}
				*p.t = t
			}
			u, err := cl.GetUsage(cmd.Context(), q)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, it := range u.Items {
				rows = append(rows, []string{it.Start.In(zone(u.TimeZone)).Format("2006-01-02 15:04"), it.ClusterID, it.Metric, it.Units + " " + it.Unit, it.Quantity + " " + it.BaseUnit})
			}
			return f.print(cmd.OutOrStdout(), u, []string{"PERIOD (" + u.TimeZone + ")", "CLUSTER", "METRIC", "USAGE", "BASE UNITS"}, rows)
		},
	}
	usage.Flags().StringVar(&q.ClusterID, "cluster", "", "only this cluster")
	usage.Flags().StringVar(&q.Metric, "metric", "", "only this metric: ingress, egress, storage, partitions, clusters, requests, connections")
	usage.Flags().StringVar(&q.Granularity, "granularity", "day", "hour, day or month (in the organisation's billing time zone)")
	usage.Flags().StringVar(&from, "from", "", "start (RFC 3339 or YYYY-MM-DD); default: the start of this month")
	usage.Flags().StringVar(&to, "to", "", "end, exclusive; default: the end of this month")

	var csvOut bool
	invoices := &cobra.Command{
		Use: "invoices [ID]", Example: "  eddy billing invoices\n" +
			"  eddy billing invoices inv-... --csv > invoice.csv", Short: "List invoices, or show one with its lines", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			if len(args) == 1 {
				if csvOut {
					b, err := cl.GetInvoiceCSV(ctx, args[0])
					if err != nil {
						return err
					}
					_, err = w.Write(b)
					return err
				}
				inv, err := cl.GetInvoice(ctx, args[0])
				if err != nil {
					return err
				}
				if f.structured() {
					return f.print(w, inv, nil, nil)
				}
				if err := f.describe(w, inv, invoiceFields(inv)); err != nil {
					return err
				}
				fmt.Fprintln(w)
				var rows [][]string
				for _, l := range inv.Lines {
					name := l.ClusterName
					if name == "" {
						name = l.ClusterID
					}
					rows = append(rows, []string{name, l.Metric, l.Units + " " + l.Unit, l.BillableUnits, l.UnitPrice, l.Amount})
				}
				return f.print(w, nil, []string{"CLUSTER", "METRIC", "USED", "BILLABLE", "UNIT PRICE", "AMOUNT (" + inv.Currency + ")"}, rows)
			}
			if csvOut {
				b, err := cl.ListInvoicesCSV(ctx, client.ListOptions{Limit: 1000})
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			}
			invs, err := listAll(ctx, cl.ListInvoices)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, i := range invs {
				rows = append(rows, []string{i.ID, i.Month, i.Status, i.Total + " " + i.Currency})
			}
			return f.print(w, invs, []string{"ID", "MONTH", "STATUS", "TOTAL"}, rows)
		},
	}
	invoices.Flags().BoolVar(&csvOut, "csv", false, "print CSV as the API serves it")

	estimate := &cobra.Command{
		Use: "estimate", Example: "  eddy billing estimate -o json", Short: "Charges so far this month and the projection to its end", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			e, err := cl.GetEstimate(cmd.Context())
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), e, [][2]string{
				{"Month", e.Month + " (" + e.TimeZone + ")"},
				{"Month to date", e.MonthToDate + " " + e.Currency},
				{"Projected", e.Projected + " " + e.Currency},
				{"Credits", e.Invoice.Credits},
				{"As of", e.AsOf.Format(time.RFC3339)},
			})
		},
	}
	cmd.AddCommand(usage, invoices, estimate)
	return cmd
}

func invoiceFields(i client.Invoice) [][2]string {
	out := [][2]string{
		{"ID", i.ID}, {"Month", i.Month + " (" + i.TimeZone + ")"}, {"Status", i.Status}, {"Plan", i.Plan},
		{"Subtotal", i.Subtotal + " " + i.Currency}, {"Credits", i.Credits}, {"Adjustments", i.Adjustments},
		{"Total", i.Total + " " + i.Currency},
	}
	if i.FinalizedAt != nil {
		out = append(out, [2]string{"Finalized", i.FinalizedAt.Format(time.RFC3339)})
	}
	return out
}

// zone loads a time zone name the API returned, or UTC.
func zone(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	return time.UTC
}
