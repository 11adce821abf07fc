package main

// `eddy quota show|set`: a cluster's limits (its quotas) beside its plan's
// ceilings and the effective value of each, the lower of the two. Setting
// goes through the cluster's PATCH, so the REST API checks every value
// against the plan (422 naming the limit and its ceiling).

import (
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/limits"
)

// quotaView is a cluster's quotas as -o json|yaml prints them.
type quotaView struct {
	ClusterID       string        `json:"cluster_id"`
	Plan            string        `json:"plan"`
	Limits          limits.Limits `json:"limits"`
	Ceilings        limits.Limits `json:"ceilings"`
	EffectiveLimits limits.Limits `json:"effective_limits"`
}

func newQuotaCmd() *cobra.Command {
	var (
		f       apiFlags
		cluster string
	)
	cmd := &cobra.Command{Use: "quota", Example: "  eddy quota show --cluster vc-...\n" +
		"  eddy quota set --cluster vc-... --ingress-mbps 50", Aliases: []string{"quotas"}, Short: "Show or set a cluster's quotas within its plan's ceilings"}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	show := func(cmd *cobra.Command, c client.Cluster) error {
		v := quotaView{ClusterID: c.ID, Plan: c.Plan, Limits: c.Limits, Ceilings: c.Ceilings, EffectiveLimits: c.EffectiveLimits}
		own, ceil, eff := limitValues(c.Limits), limitValues(c.Ceilings), limitValues(c.EffectiveLimits)
		var rows [][]string
		for _, h := range limitFlagHelp {
			rows = append(rows, []string{h.field, strconv.FormatInt(own[h.field], 10), strconv.FormatInt(ceil[h.field], 10), strconv.FormatInt(eff[h.field], 10)})
		}
		return f.print(cmd.OutOrStdout(), v, []string{"QUOTA", "CLUSTER", "PLAN " + c.Plan, "EFFECTIVE"}, rows)
	}
	get := &cobra.Command{
		Use: "show", Short: "Show each quota: the cluster's, its plan's ceiling and the effective one", Args: cobra.NoArgs,
		Example: "  eddy quota show --cluster vc-...\n  eddy quota show -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			c, err := cl.GetCluster(cmd.Context(), id)
			if err != nil {
				return err
			}
			return show(cmd, c)
		},
	}
	var lim limitFlags
	set := &cobra.Command{
		Use: "set", Short: "Change quotas; those not given stay as they are", Args: cobra.NoArgs,
		Long: "Each value must lie within the limit's bounds and at most the plan's ceiling;\n" +
			"the REST API refuses the change otherwise, naming the quota and its ceiling.",
		Example: "  eddy quota set --cluster vc-... --ingress-mbps 50 --egress-mbps 100\n  eddy quota set --max-connections 500",
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lim.given(cmd.Flags())
			if err != nil {
				return err
			}
			if l == nil {
				return errors.New("nothing to set: give at least one quota, e.g. --ingress-mbps")
			}
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			c, err := cl.UpdateCluster(cmd.Context(), id, client.UpdateClusterRequest{Limits: l})
			if err != nil {
				return err
			}
			return show(cmd, c)
		},
	}
	lim.register(set.Flags(), false)
	cmd.AddCommand(get, set)
	return cmd
}
