package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

func newTopicCmd() *cobra.Command {
	var (
		f       apiFlags
		cluster string
	)
	cmd := &cobra.Command{Use: "topic", Example: "  eddy topic create orders --cluster vc-... -p 6\n" +
		"  eddy topic list --cluster vc-...", Aliases: []string{"topics"}, Short: "Manage the topics of a cluster"}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")
	need := func() (*client.Client, error) {
		cl, id, err := f.clusterClient(cluster)
		cluster = id
		return cl, err
	}
	topicFields := func(t client.Topic) [][2]string {
		out := [][2]string{{"Name", t.Name}, {"Id", t.ID}, {"Partitions", strconv.Itoa(int(t.PartitionCount))},
			{"Configs", configString(t.Configs)}, {"Created", t.CreatedAt.Format(time.RFC3339)}}
		for _, p := range t.Partitions {
			leader := "none"
			if p.Leader != nil {
				leader = strconv.Itoa(int(*p.Leader))
			}
			out = append(out, [2]string{fmt.Sprintf("  partition %d", p.Partition), fmt.Sprintf("leader %s, epoch %d, high watermark %d", leader, p.LeaderEpoch, p.HighWatermark)})
		}
		return out
	}

	var (
		partitions int32
		configs    []string
	)
	create := &cobra.Command{
		Use: "create NAME", Example: "  eddy topic create orders --cluster vc-... -p 6 --config retention.ms=604800000 --config cleanup.policy=compact", Short: "Create a topic", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := need()
			if err != nil {
				return err
			}
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			t, err := cl.CreateTopic(cmd.Context(), cluster, client.CreateTopicRequest{Name: args[0], Partitions: &partitions, Configs: cfg})
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), t, topicFields(t))
		},
	}
	create.Flags().Int32VarP(&partitions, "partitions", "p", 1, "number of partitions")
	create.Flags().StringArrayVar(&configs, "config", nil, "topic config name=value (repeatable)")

	var (
		newPartitions int32
		alterConfigs  []string
	)
	alter := &cobra.Command{
		Use: "alter NAME", Example: "  eddy topic alter orders --cluster vc-... -p 12\n" +
			"  eddy topic alter orders --cluster vc-... --config retention.ms=86400000", Short: "Add partitions or replace a topic's configs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := need()
			if err != nil {
				return err
			}
			var req client.UpdateTopicRequest
			if cmd.Flags().Changed("partitions") {
				req.Partitions = &newPartitions
			}
			if cmd.Flags().Changed("config") {
				cfg, err := parseConfigs(alterConfigs)
				if err != nil {
					return err
				}
				if cfg == nil {
					cfg = map[string]string{}
				}
				req.Configs = &cfg
			}
			t, err := cl.UpdateTopic(cmd.Context(), cluster, args[0], req)
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), t, topicFields(t))
		},
	}
	alter.Flags().Int32VarP(&newPartitions, "partitions", "p", 0, "new partition count (can only grow)")
	alter.Flags().StringArrayVar(&alterConfigs, "config", nil, "topic config name=value; replaces all explicit configs (repeatable)")

	list := &cobra.Command{
		Use: "list", Example: "  eddy topic list --cluster vc-...", Short: "List topics", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := listInCluster(cmd.Context(), &f, cluster, (*client.Client).ListTopics)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range ts {
				rows = append(rows, []string{t.Name, strconv.Itoa(int(t.PartitionCount)), configString(t.Configs)})
			}
			return f.print(cmd.OutOrStdout(), ts, []string{"NAME", "PARTITIONS", "CONFIGS"}, rows)
		},
	}
	describe := &cobra.Command{
		Use: "describe NAME", Example: "  eddy topic describe orders --cluster vc-...", Short: "Show a topic and its partitions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := need()
			if err != nil {
				return err
			}
			t, err := cl.GetTopic(cmd.Context(), cluster, args[0])
			if err != nil {
				return err
			}
			return f.describe(cmd.OutOrStdout(), t, topicFields(t))
		},
	}
	del := &cobra.Command{
		Use: "delete NAME", Example: "  eddy topic delete orders --cluster vc-...", Short: "Delete a topic and its data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := need()
			if err != nil {
				return err
			}
			if err := cl.DeleteTopic(cmd.Context(), cluster, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted topic %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, alter, list, describe, del)
	return cmd
}
