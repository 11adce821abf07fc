package main

// `eddy group list|describe|reset-offsets|delete`. Listing and describing
// (committed offsets and lag per partition) use the REST API; resetting
// offsets and deleting a group have no REST routes, so they speak Kafka
// (kadm) to the cluster with an API key, as kafka-consumer-groups does,
// and the coordinator's rules hold: only a group without members can have
// its offsets reset or be deleted.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddy-streams/eddy/api/client"
)

// offsetReset is one partition's planned or done reset.
type offsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CurrentOffset is the committed offset, -1 for none.
	CurrentOffset int64 `json:"current_offset"`
	NewOffset     int64 `json:"new_offset"`
}

// resetResult is what reset-offsets prints.
type resetResult struct {
	Group   string        `json:"group"`
	DryRun  bool          `json:"dry_run"`
	Offsets []offsetReset `json:"offsets"`
}

func newGroupCmd() *cobra.Command {
	var (
		f       apiFlags
		k       kafkaFlags
		cluster string
	)
	cmd := &cobra.Command{Use: "group", Example: "  eddy group list --cluster vc-...\n" +
		"  eddy group reset-offsets billing --to-earliest --dry-run", Aliases: []string{"groups", "consumer-group"}, Short: "Inspect consumer groups and their lag, reset their offsets, delete them"}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "cluster id (default: the profile's)")

	list := &cobra.Command{
		Use: "list", Short: "List the groups that committed offsets, with their total lag", Args: cobra.NoArgs,
		Example: "  eddy group list --cluster vc-...",
		RunE: func(cmd *cobra.Command, _ []string) error {
			gs, err := listInCluster(cmd.Context(), &f, cluster, (*client.Client).ListConsumerGroups)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, g := range gs {
				rows = append(rows, []string{g.GroupID, strconv.Itoa(int(g.Partitions)), strconv.FormatInt(g.TotalLag, 10), g.LastCommitAt.Format(time.RFC3339)})
			}
			return f.print(cmd.OutOrStdout(), gs, []string{"GROUP", "PARTITIONS", "TOTAL LAG", "LAST COMMIT"}, rows)
		},
	}
	describe := &cobra.Command{
		Use: "describe GROUP", Short: "Show a group's committed offsets and lag per partition", Args: cobra.ExactArgs(1),
		Example: "  eddy group describe billing --cluster vc-...\n  eddy group describe billing -o yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, err := f.clusterClient(cluster)
			if err != nil {
				return err
			}
			g, err := cl.GetConsumerGroup(cmd.Context(), id, args[0])
			if err != nil {
				return err
			}
			if f.structured() {
				return f.print(cmd.OutOrStdout(), g, nil, nil)
			}
			var rows [][]string
			for _, o := range g.Offsets {
				lag := strconv.FormatInt(o.Lag, 10)
				if o.HighWatermark < 0 {
					lag = "- (topic deleted)"
				}
				rows = append(rows, []string{o.Topic, strconv.Itoa(int(o.Partition)), strconv.FormatInt(o.CommittedOffset, 10),
					strconv.FormatInt(o.HighWatermark, 10), lag, o.CommittedAt.Format(time.RFC3339)})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Group %s: %d partitions, total lag %d\n\n", g.GroupID, g.Partitions, g.TotalLag)
			return f.print(cmd.OutOrStdout(), g, []string{"TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG", "COMMITTED AT"}, rows)
		},
	}

	var (
		topics               []string
		toEarliest, toLatest bool
		toDatetime           string
		toOffset             int64
		dryRun               bool
	)
	reset := &cobra.Command{
		Use: "reset-offsets GROUP", Short: "Move a group's committed offsets (the group must have no members)", Args: cobra.ExactArgs(1),
		Long: "Plans new offsets for the group's partitions (those of --topic, else all it committed)\n" +
			"and commits them. The group must be empty: stop its consumers first; a group with\n" +
			"members is refused with NON_EMPTY_GROUP. --dry-run prints the plan only.\n" +
			"--to-offset is kept within each partition's earliest and latest offsets.",
		Example: "  eddy group reset-offsets billing --to-earliest --dry-run\n" +
			"  eddy group reset-offsets billing --topic orders --to-datetime 2026-01-02T15:04:05Z\n" +
			"  eddy group reset-offsets billing --topic orders:0,1 --to-offset 1000",
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			// Flags are checked before any request: a typo should not cost
			// a round trip to the API and the brokers first.
			want, err := parseTopicPartitions(topics)
			if err != nil {
				return err
			}
			to := resetTarget{earliest: toEarliest, latest: toLatest, offset: toOffset, byOffset: cmd.Flags().Changed("to-offset")}
			if toDatetime != "" {
				if to.datetime, err = time.Parse(time.RFC3339, toDatetime); err != nil {
					return fmt.Errorf("--to-datetime: want an RFC 3339 time, not %q", toDatetime)
				}
			}
			conn, err := k.resolve(cmd, &f, cluster)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			kc, err := conn.kafkaClient(ctx)
			if err != nil {
				return err
			}
			defer kc.Close()
			adm := kadm.NewClient(kc)
			plan, err := planReset(ctx, adm, group, want, to)
			if err != nil {
				return err
			}
			res := resetResult{Group: group, DryRun: dryRun, Offsets: plan}
			if !dryRun {
				if err := commitReset(ctx, adm, group, plan); err != nil {
					return err
				}
			}
			var rows [][]string
			for _, o := range plan {
				cur := strconv.FormatInt(o.CurrentOffset, 10)
				if o.CurrentOffset < 0 {
					cur = "-"
				}
				rows = append(rows, []string{o.Topic, strconv.Itoa(int(o.Partition)), cur, strconv.FormatInt(o.NewOffset, 10)})
			}
			if !f.structured() {
				if dryRun {
					fmt.Fprintf(cmd.OutOrStdout(), "Plan for group %s (dry run, nothing committed):\n\n", group)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "Reset the offsets of group %s:\n\n", group)
				}
			}
			return f.print(cmd.OutOrStdout(), res, []string{"TOPIC", "PARTITION", "CURRENT OFFSET", "NEW OFFSET"}, rows)
		},
	}
	rf := reset.Flags()
	rf.StringArrayVar(&topics, "topic", nil, "a topic, or topic:partition,partition,...; repeatable (default: every partition the group committed)")
	rf.BoolVar(&toEarliest, "to-earliest", false, "to each partition's earliest offset")
	rf.BoolVar(&toLatest, "to-latest", false, "to each partition's end (skip everything so far)")
	rf.StringVar(&toDatetime, "to-datetime", "", "to the first record at or after this time (RFC 3339)")
	rf.Int64Var(&toOffset, "to-offset", 0, "to this offset")
	rf.BoolVar(&dryRun, "dry-run", false, "print the plan, commit nothing")
	reset.MarkFlagsOneRequired("to-earliest", "to-latest", "to-datetime", "to-offset")
	reset.MarkFlagsMutuallyExclusive("to-earliest", "to-latest", "to-datetime", "to-offset")

	del := &cobra.Command{
		Use: "delete GROUP", Short: "Delete a group and its committed offsets (the group must have no members)", Args: cobra.ExactArgs(1),
		Example: "  eddy group delete billing --cluster vc-...",
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := k.resolve(cmd, &f, cluster)
			if err != nil {
				return err
			}
			kc, err := conn.kafkaClient(cmd.Context())
			if err != nil {
				return err
			}
			defer kc.Close()
			r, err := kadm.NewClient(kc).DeleteGroup(cmd.Context(), args[0])
			if err == nil {
				err = r.Err
			}
			if err != nil {
				return fmt.Errorf("group %s: %w", args[0], kafkaError(err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted group %s\n", args[0])
			return nil
		},
	}
	for _, c := range []*cobra.Command{reset, del} {
		k.register(c)
	}
	cmd.AddCommand(list, describe, reset, del)
	return cmd
}

// parseTopicPartitions reads --topic values: "t" (all its partitions, nil)
// or "t:0,1".
func parseTopicPartitions(vals []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, v := range vals {
		topic, parts, ok := strings.Cut(v, ":")
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: want topic or topic:partition,...", v)
		}
		if !ok {
			out[topic] = nil
			continue
		}
		for _, p := range strings.Split(parts, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: %q is not a partition", v, p)
			}
			out[topic] = append(out[topic], int32(n))
		}
	}
	return out, nil
}

// resetTarget is where reset-offsets moves each partition.
type resetTarget struct {
	earliest, latest bool
	datetime         time.Time // zero: not by time
	offset           int64
	byOffset         bool
}

// planReset lists the group's partitions to reset (those of want, else
// all it committed) with their committed and new offsets.
func planReset(ctx context.Context, adm *kadm.Client, group string, want map[string][]int32, to resetTarget) ([]offsetReset, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("group %s: committed offsets: %w", group, kafkaError(err))
	}
	if len(want) == 0 {
		for t, ps := range committed {
			for p := range ps {
				want[t] = append(want[t], p)
			}
		}
		if len(want) == 0 {
			return nil, fmt.Errorf("group %s has no committed offsets: name the topics with --topic", group)
		}
	}
	topics := slices.Sorted(maps.Keys(want))
	start, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = start.Error()
	}
	if err != nil {
		return nil, kafkaError(err)
	}
	end, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = end.Error()
	}
	if err != nil {
		return nil, kafkaError(err)
	}
	var at kadm.ListedOffsets
	if !to.datetime.IsZero() {
		if at, err = adm.ListOffsetsAfterMilli(ctx, to.datetime.UnixMilli(), topics...); err == nil {
			err = at.Error()
		}
		if err != nil {
			return nil, kafkaError(err)
		}
	}
	var plan []offsetReset
	for _, t := range topics {
		parts := want[t]
		if parts == nil {
			parts = slices.Collect(maps.Keys(end[t]))
		}
		slices.Sort(parts)
		for _, p := range slices.Compact(parts) {
			lo, okLo := start.Lookup(t, p)
			hi, okHi := end.Lookup(t, p)
			if !okLo || !okHi {
				return nil, fmt.Errorf("topic %s has no partition %d", t, p)
			}
			o := offsetReset{Topic: t, Partition: p, CurrentOffset: -1}
			if c, ok := committed.Lookup(t, p); ok {
				o.CurrentOffset = c.At
			}
			switch {
			case to.earliest:
				o.NewOffset = lo.Offset
			case to.latest:
				o.NewOffset = hi.Offset
			case to.byOffset:
				o.NewOffset = min(max(to.offset, lo.Offset), hi.Offset)
			default:
				// After the last record, the end: nothing is that late yet.
				o.NewOffset = hi.Offset
				if a, ok := at.Lookup(t, p); ok && a.Offset >= 0 {
					o.NewOffset = a.Offset
				}
			}
			plan = append(plan, o)
		}
	}
	return plan, nil
}

// commitReset commits the plan for an empty group. The coordinator takes
// an admin's commit only while the group has no members (and answers
// UNKNOWN_MEMBER_ID otherwise); asking first gives the reason its name.
func commitReset(ctx context.Context, adm *kadm.Client, group string, plan []offsetReset) error {
	notEmpty := fmt.Errorf("group %s: %w: stop its consumers first", group, kafkaError(kerr.NonEmptyGroup))
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kafkaError(err)
	}
	d := ds[group]
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("group %s: %w", group, kafkaError(d.Err))
	}
	if len(d.Members) > 0 || !slices.Contains([]string{"", "Empty", "Dead"}, d.State) {
		return notEmpty
	}
	var offs kadm.Offsets
	for _, o := range plan {
		offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.NewOffset, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	switch {
	case errors.Is(err, kerr.UnknownMemberID):
		return notEmpty // a member joined since
	case err != nil:
		return fmt.Errorf("group %s: %w", group, kafkaError(err))
	}
	return nil
}
