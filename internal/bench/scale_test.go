package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/bench"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

// TestScale runs a small scale scenario against a real stack: its
// clusters and partitions are made and led, the idle pool is measured
// from the brokers' metrics and pg_stat_database, and Metadata requests of
// the first cluster answer its partitions; the report carries the table
// and its sentence.
func TestScale(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2, Metrics: true, BrokerArgs: []string{"--sasl-mechanisms=PLAIN"}})
	x := bench.Scale{Name: bench.ScaleName, Partitions: 20, Clusters: 4, TopicPartitions: 3, Quiet: 2 * time.Second, Requests: 10}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Bootstrap: s.Bootstrap(), Metrics: s.MetricsURLs(), DatabaseURL: url, Scale: &x,
		Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scale) != 1 || len(rep.Runs) != 0 {
		t.Fatalf("scale results %+v, runs %d", rep.Scale, len(rep.Runs))
	}
	r := rep.Scale[0]
	if r.MetadataPartitions != 5 {
		t.Errorf("Metadata of the first cluster shows %d partitions, want 5", r.MetadataPartitions)
	}
	for name, p := range map[string]bench.Percentiles{"all topics": r.MetadataAll, "one topic": r.MetadataOne} {
		if p.Count != 10 || p.P99 <= 0 {
			t.Errorf("Metadata %s: %+v", name, p)
		}
	}
	if r.Idle.PGXactsPerSec <= 0 || r.RSSAfterMiB <= 0 || r.Idle.CPUCores <= 0 {
		t.Errorf("idle pool %+v, RSS %v MiB", r.Idle, r.RSSAfterMiB)
	}
	wantMarkdown(t, rep, "### Scale", "| 20 | 4 |", "Postgres committed", "| scale |")
}
