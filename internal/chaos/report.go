package chaos

import (
	"cmp"
	"fmt"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Report file names inside Config.ReportDir.
const (
	ReportFile = "report.md"
	ChartFile  = "throughput.png"
)

// Summary is the one-paragraph outcome of a run, for test logs.
func (r *Run) Summary() string {
	allFailed, oneFailed := r.History.Failed()
	return fmt.Sprintf("seed %d: %d faults (%s); %d acks=all records acknowledged (%d attempts failed for good), %d acks=1 (%d lost, %d failed); %d reads, %d confirmed commits, %d records stored; violations: %s",
		r.Config.Seed, len(r.Timeline.Events()), r.faultCounts(), r.Result.AcksAll, allFailed, r.Result.AcksOne, r.Result.LostAcksOne,
		oneFailed, r.Result.Reads, r.Result.Commits, r.Result.Stored, r.violationCounts())
}

func (r *Run) faultCounts() string {
	n := map[FaultKind]int{}
	for _, e := range r.Timeline.Events() {
		n[e.Step.Kind]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *Run) violationCounts() string {
	if r.Result.OK() {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Result.Counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Result.Counts[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteReport writes the run's report (markdown) and chart (PNG) into dir.
func (r *Run) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := r.writeChart(filepath.Join(dir, ChartFile)); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportFile), []byte(r.markdown()), 0o644)
}

func (r *Run) rel(t time.Time) string {
	return fmt.Sprintf("+%.1fs", t.Sub(r.Start).Seconds())
}

func (r *Run) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict := "PASS: no violations"
	if !r.Result.OK() {
		verdict = "FAIL: " + r.violationCounts()
	}
	p("# Chaos run, seed %d\n\n", r.Config.Seed)
	kinds := ""
	if len(r.Config.Kinds) > 0 {
		var ks []string
		for _, k := range r.Config.Kinds {
			ks = append(ks, string(k))
		}
		kinds = " KINDS=" + strings.Join(ks, ",")
	}
	p("Reproduce: `make soak DURATION=%v SEED=%d FAULT_EVERY=%v%s` (%d brokers, %d control planes; the same plan, though process scheduling varies).\n\n",
		r.Config.Duration, r.Config.Seed, r.Config.FaultEvery, kinds, r.Config.Cluster.Brokers, r.Config.Cluster.ControlPlanes)
	p("Faults from %s for %v. **%s**\n\n", r.Start.UTC().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Second), verdict)
	allFailed, oneFailed := r.History.Failed()
	p("## Totals\n\n| | |\n|---|---|\n")
	p("| acks=all records acknowledged | %d |\n| acks=all attempts failed for good (never acknowledged) | %d |\n", r.Result.AcksAll, allFailed)
	p("| acks=1 records acknowledged | %d |\n| acks=1 records acknowledged, then lost (allowed) | %d |\n| acks=1 attempts failed | %d |\n", r.Result.AcksOne, r.Result.LostAcksOne, oneFailed)
	p("| records handed to consumers | %d |\n| confirmed group commits | %d |\n| records in the log at the end | %d |\n", r.Result.Reads, r.Result.Commits, r.Result.Stored)
	if r.Config.Workload.Copiers > 0 {
		p("| transactions committed / aborted by the copiers (sessions replaced) | %d / %d (%d) |\n", r.EOSCommitted, r.EOSAborted, r.EOSRestarts)
		p("| records in the copiers' committed output | %d |\n", r.EOSOutput)
	}
	p("| objects a crash left between PUT and commit (must be collected) | %d |\n", len(r.Orphans))
	p("| faults injected | %d |\n| violations | %d |\n\n", len(r.Timeline.Events()), r.Result.Total())

	p("## Faults by kind\n\n| fault | count | total time |\n|---|---|---|\n")
	count, total := map[FaultKind]int{}, map[FaultKind]time.Duration{}
	for _, e := range r.Timeline.Events() {
		count[e.Step.Kind]++
		total[e.Step.Kind] += e.End.Sub(e.Start)
	}
	for _, k := range slices.Sorted(maps.Keys(count)) {
		p("| %s | %d | %v |\n", k, count[k], total[k].Round(time.Second))
	}
	if why := r.History.FailErrors(); len(why) > 0 {
		p("\n## Why produce attempts failed for good\n\n| error | attempts |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(why)) {
			p("| %s | %d |\n", strings.ReplaceAll(k, "|", "/"), why[k])
		}
	}
	if len(r.Hits) > 0 {
		p("\n## Object-store requests faulted\n\n| request, fault | requests |\n|---|---|\n")
		for _, k := range slices.Sorted(maps.Keys(r.Hits)) {
			p("| %s | %d |\n", k, r.Hits[k])
		}
	}

	p("\n## Violations\n\n")
	if r.Result.OK() {
		p("None.\n")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Result.Counts)) {
		p("- %s: %d\n", k, r.Result.Counts[k])
	}
	for _, v := range r.Result.Violations {
		p("\n### %s at %d/%d, %s\n\n%s\n\nFaults within 15s:\n", v.Kind, v.Partition, v.Offset, r.rel(v.At), v.Detail)
		for _, e := range r.Timeline.Around(v.At, 15*time.Second) {
			p("- %s to %s: %s\n", r.rel(e.Start), r.rel(e.End), e.Step)
		}
	}

	p("\n## Fault timeline\n\n![throughput with faults](%s)\n\n| start | end | fault | problem |\n|---|---|---|---|\n", ChartFile)
	for _, e := range r.Timeline.Events() {
		p("| %s | %s | %s | %s |\n", r.rel(e.Start), r.rel(e.End), e.Step, e.Err)
	}
	return b.String()
}

// writeChart plots acknowledged records per second (acks=all and acks=1)
// and, above them, each fault as a bar from its start to its end.
func (r *Run) writeChart(path string) error {
	acks := r.History.Acks()
	from := r.Start.Add(-10 * time.Second)
	to := r.End.Add(10 * time.Second)
	secs := int(to.Sub(from)/time.Second) + 1
	all, one := make([]float64, secs), make([]float64, secs)
	for _, a := range acks {
		i := int(a.At.Sub(from) / time.Second)
		if i < 0 || i >= secs {
			continue
		}
		if a.AcksAll {
			all[i]++
		} else {
			one[i]++
		}
	}
	line := func(ys []float64) plotter.XYs {
		xy := make(plotter.XYs, len(ys))
		for i, y := range ys {
			xy[i].X, xy[i].Y = float64(i)+from.Sub(r.Start).Seconds(), y
		}
		return xy
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("chaos run, seed %d: acknowledged records per second, faults above", r.Config.Seed)
	p.X.Label.Text = "seconds since the faults began"
	p.Y.Label.Text = "records/s"
	p.Legend.Top, p.Legend.Left = true, true
	top := slices.Max(append(slices.Clone(all), slices.Max(append(one, 1))))
	for _, s := range []struct {
		name string
		ys   []float64
		c    color.RGBA
	}{{"acks=all", all, color.RGBA{R: 31, G: 119, B: 180, A: 255}}, {"acks=1", one, color.RGBA{R: 127, G: 127, B: 127, A: 255}}} {
		l, err := plotter.NewLine(line(s.ys))
		if err != nil {
			return err
		}
		l.Color = s.c
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	kinds := append(slices.Clone(ProcessFaults), StorageFaults...)
	palette := []color.RGBA{{214, 39, 40, 255}, {255, 127, 14, 255}, {148, 103, 189, 255}, {140, 86, 75, 255},
		{44, 160, 44, 255}, {227, 119, 194, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}, {0, 0, 0, 255}}
	legend := map[FaultKind]bool{}
	for _, e := range r.Timeline.Events() {
		k := slices.Index(kinds, e.Step.Kind)
		y := top * (1.05 + 0.04*float64(k))
		end := cmp.Or(e.End, r.End)
		l, err := plotter.NewLine(plotter.XYs{{X: e.Start.Sub(r.Start).Seconds(), Y: y}, {X: end.Sub(r.Start).Seconds(), Y: y}})
		if err != nil {
			return err
		}
		l.Color, l.Width = palette[k%len(palette)], vg.Points(4)
		p.Add(l)
		if !legend[e.Step.Kind] {
			legend[e.Step.Kind] = true
			p.Legend.Add(string(e.Step.Kind), l)
		}
	}
	p.Y.Max = top * (1.1 + 0.04*float64(len(kinds)))
	p.Add(plotter.NewGrid())
	return p.Save(30*vg.Centimeter, 14*vg.Centimeter, path)
}
