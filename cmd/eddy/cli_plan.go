package main

// `eddy plan list|get|create|update|assign`: the operator's plans and the
// ceilings they set on their organisations' clusters, with --token.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func planFields(p client.Plan) [][2]string {
	out := [][2]string{{"ID", p.ID}, {"Name", p.Name}, {"Currency", p.Currency}}
	ceil := limitValues(p.Ceilings)
	for _, h := range limitFlagHelp {
		out = append(out, [2]string{"Ceiling " + h.field, strconv.FormatInt(ceil[h.field], 10)})
	}
	return append(out, [2]string{"Updated", p.UpdatedAt.Format(time.RFC3339)})
}

func newPlanCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "plan", Example: "  eddy plan create small --ingress-mbps 50 --token $EDDY_ADMIN_TOKEN\n" +
		"  eddy plan assign small --org org-... --token $EDDY_ADMIN_TOKEN", Aliases: []string{"plans"}, Short: "Manage plans and their ceilings (operators, with --token)"}
	f.register(cmd)

	list := &cobra.Command{
		Use: "list", Example: "  eddy plan list --token $EDDY_ADMIN_TOKEN", Short: "List plans", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			ps, err := listAll(cmd.Context(), cl.ListPlans)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.ID, p.Name, p.Currency, strconv.Itoa(int(p.Ceilings.IngressMBps)), strconv.Itoa(int(p.Ceilings.EgressMBps)),
					strconv.Itoa(int(p.Ceilings.MaxPartitions)), strconv.FormatInt(p.Ceilings.MaxStorageGB, 10)})
			}
			return f.print(cmd.OutOrStdout(), ps, []string{"ID", "NAME", "CURRENCY", "INGRESS MB/S", "EGRESS MB/S", "PARTITIONS", "STORAGE GB"}, rows)
		},
	}
	get := &cobra.Command{
		Use: "get ID", Example: "  eddy plan get standard --token $EDDY_ADMIN_TOKEN", Short: "Show a plan and its ceilings", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			p, err := cl.GetPlan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, planFields(p))
		},
	}

	var (
		ceil           limitFlags
		name, currency string
	)
	create := &cobra.Command{
		Use: "create ID", Example: "  eddy plan create small --name Small --ingress-mbps 50 --max-partitions 100 --token $EDDY_ADMIN_TOKEN", Short: "Create a plan; ceilings not given are the widest the limits allow", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			c, err := ceil.given(cmd.Flags())
			if err != nil {
				return err
			}
			if name == "" {
				name = args[0]
			}
			p, err := cl.CreatePlan(cmd.Context(), client.CreatePlanRequest{ID: args[0], Name: name, Currency: currency, Ceilings: c})
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, planFields(p))
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name (default: the id)")
	create.Flags().StringVar(&currency, "currency", "USD", "currency of the plan's prices")
	ceil.register(create.Flags(), false)

	var (
		upCeil limitFlags
		rename string
	)
	update := &cobra.Command{
		Use: "update ID", Example: "  eddy plan update small --ingress-mbps 100 --token $EDDY_ADMIN_TOKEN", Short: "Rename a plan or change its ceilings; what is not given stays as it is", Args: cobra.ExactArgs(1),
		Long: "Raising a ceiling lets tenants set their limits up to it. Lowering one below a\n" +
			"cluster's limit caps the cluster at the ceiling without changing its own limit.",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			c, err := upCeil.given(cmd.Flags())
			if err != nil {
				return err
			}
			req := client.UpdatePlanRequest{Ceilings: c}
			if cmd.Flags().Changed("name") {
				req.Name = &rename
			}
			if req.Name == nil && req.Ceilings == nil {
				return fmt.Errorf("nothing to update: give --name or a ceiling")
			}
			p, err := cl.UpdatePlan(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), p, planFields(p))
		},
	}
	update.Flags().StringVar(&rename, "name", "", "new name")
	upCeil.register(update.Flags(), false)

	var org string
	assign := &cobra.Command{
		Use: "assign ID --org ORG", Example: "  eddy plan assign small --org org-... --token $EDDY_ADMIN_TOKEN", Short: "Put an organisation (and so all its clusters) on a plan", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return fmt.Errorf("--org is required")
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			cur, err := cl.GetBillingSettings(cmd.Context(), org)
			if err != nil {
				return err
			}
			s, err := cl.SetBillingSettings(cmd.Context(), org, client.BillingSettings{Plan: args[0], TimeZone: cur.TimeZone})
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), s, [][2]string{{"Organisation", org}, {"Plan", s.Plan}, {"Billing time zone", s.TimeZone}})
		},
	}
	assign.Flags().StringVar(&org, "org", "", "the organisation's id")
	cmd.AddCommand(list, get, create, update, assign)
	return cmd
}
