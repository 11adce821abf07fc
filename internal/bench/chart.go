package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// barChart is a grouped bar chart with optional horizontal reference
// lines, drawn with gonum/plot: one bar per series in each group, the
// group names slanted under the axis so long names never overlap, the
// value above each bar.
type barChart struct {
	title  string
	unit   string
	log    bool
	groups []string
	series []string
	values [][]float64 // [group][series]; 0 or less: no bar
	refs   []refLine
}

type refLine struct {
	label string
	value float64
}

var (
	seriesColors = []color.RGBA{{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff}}
	refColors    = []color.RGBA{{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}}
)

// save draws the chart into a PNG file at path.
func (c *barChart) save(path string) error {
	p := plot.New()
	p.Title.Text = c.title
	p.Y.Label.Text = c.unit
	p.NominalX(c.groups...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	// The legend goes right of the plot, where it hides no bar.
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)

	lo, hi := math.Inf(1), 0.0
	for _, g := range c.values {
		for _, v := range g {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	for _, r := range c.refs {
		lo, hi = min(lo, r.value), max(hi, r.value)
	}
	if hi == 0 {
		lo, hi = 1, 1
	}
	// On a log scale bars stand on the decade below the smallest value,
	// not on zero (which has no logarithm).
	floor := 0.0
	if c.log {
		floor = math.Pow(10, math.Floor(math.Log10(lo)))
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = floor, math.Pow(10, math.Ceil(math.Log10(hi*1.5)))
	} else {
		p.Y.Min, p.Y.Max = 0, hi*1.15
	}

	n := len(c.series)
	width := vg.Points(min(28, 480/float64(max(1, len(c.groups)*n))))
	for si, name := range c.series {
		vals, base := make(plotter.Values, len(c.groups)), make(plotter.Values, len(c.groups))
		var labels plotter.XYLabels
		for gi := range c.groups {
			v := c.values[gi][si]
			base[gi] = floor
			if v > 0 {
				vals[gi] = v - floor
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(gi), Y: v})
				labels.Labels = append(labels.Labels, fmtTick(v))
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color, bars.LineStyle.Width = seriesColors[si%len(seriesColors)], 0
		bars.Offset = vg.Length(float64(si)-float64(n-1)/2) * width
		if floor > 0 {
			under, err := plotter.NewBarChart(base, width)
			if err != nil {
				return err
			}
			under.Offset = bars.Offset
			bars.StackOn(under)
		}
		p.Add(bars)
		legend.Add(name, bars)
		if len(labels.XYs) > 0 {
			l, err := plotter.NewLabels(labels)
			if err != nil {
				return err
			}
			for i := range l.TextStyle {
				l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YBottom
				l.TextStyle[i].Font.Size = vg.Points(7)
			}
			l.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
			p.Add(l)
		}
	}
	for ri, r := range c.refs {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: r.value}, {X: float64(len(c.groups)) - 0.5, Y: r.value}})
		if err != nil {
			return err
		}
		line.Color, line.Width = refColors[ri%len(refColors)], vg.Points(1.5)
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(line)
		legend.Add(r.label+" "+fmtTick(r.value), line)
	}
	const w, h, legendW = 30 * vg.Centimeter, 14 * vg.Centimeter, 7 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(draw.Crop(dc, w-legendW+vg.Points(8), 0, 0, -vg.Points(24)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fmtTick(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// WriteCharts draws the throughput and latency charts into dir and
// returns their file names.
func (r *Report) WriteCharts(dir string) ([]string, error) {
	series := []string{"Eddy"}
	withPeer := len(r.Runs) > 0 && r.Runs[0].Peer != nil
	if withPeer {
		series = append(series, "kfake")
	}
	pick := func(c Comparison, f func(*Result) float64) []float64 {
		out := []float64{f(c.Eddy)}
		if withPeer {
			v := 0.0
			if c.Peer != nil {
				v = f(c.Peer)
			}
			out = append(out, v)
		}
		return out
	}
	var names []string

	// Throughput: produce at max rate and the read-backs, with the limits.
	tp := &barChart{title: "Throughput (MB/s of record values, higher is better)", unit: "MB/s", series: series}
	for _, c := range r.Runs {
		if c.Workload.Rate == 0 {
			tp.groups = append(tp.groups, shortName(c.Workload.Name)+" produce")
			tp.values = append(tp.values, pick(c, func(x *Result) float64 { return x.MBPerSec }))
		}
		if c.Eddy.Cold != nil {
			tp.groups = append(tp.groups, shortName(c.Workload.Name)+" cold read")
			tp.values = append(tp.values, pick(c, func(x *Result) float64 { return readMB(x.Cold) }))
			tp.groups = append(tp.groups, shortName(c.Workload.Name)+" hot read")
			tp.values = append(tp.values, pick(c, func(x *Result) float64 { return readMB(x.Hot) }))
		}
	}
	if r.Limits != nil {
		for size, v := range r.Limits.LoopbackMBps {
			tp.refs = append(tp.refs, refLine{fmt.Sprintf("loopback TCP, %d B writes:", size), v})
			break
		}
		tp.refs = append(tp.refs, refLine{"disk, fsync'd 1 MiB writes:", r.Limits.DiskMBps})
	}
	if len(tp.groups) > 0 {
		tp.log = true
		if err := tp.save(filepath.Join(dir, "benchmarks-throughput.png")); err != nil {
			return nil, err
		}
		names = append(names, "benchmarks-throughput.png")
	}

	// Latency percentiles of every workload, produce and end to end.
	for _, kind := range []string{"produce", "end-to-end"} {
		lc := &barChart{title: kind + " latency percentiles (ms, log scale, lower is better)", unit: "ms", log: true, series: series}
		for _, c := range r.Runs {
			if c.Workload.Rate == 0 {
				continue // at max rate latency is the client's queue, not the server
			}
			for _, p := range []struct {
				name string
				f    func(Percentiles) float64
			}{{"p50", func(p Percentiles) float64 { return p.P50 }}, {"p99", func(p Percentiles) float64 { return p.P99 }}, {"p99.9", func(p Percentiles) float64 { return p.P999 }}} {
				get := func(x *Result) float64 {
					if kind == "produce" {
						return p.f(x.ProduceLatency)
					}
					if x.EndToEnd == nil {
						return 0
					}
					return p.f(*x.EndToEnd)
				}
				lc.groups = append(lc.groups, shortName(c.Workload.Name)+" "+p.name)
				lc.values = append(lc.values, pick(c, get))
			}
		}
		if len(lc.groups) == 0 {
			continue
		}
		name := "benchmarks-latency-" + kind + ".png"
		if err := lc.save(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

func readMB(rr *ReadResult) float64 {
	if rr == nil {
		return 0
	}
	return rr.MBPerSec
}

// shortName fits workload names under narrow bars.
func shortName(s string) string {
	s = strings.ReplaceAll(s, "latency-10MBps-", "")
	s = strings.ReplaceAll(s, "objstore-1000-partitions", "1000-part")
	s = strings.ReplaceAll(s, "max-throughput", "max-tput")
	return strings.ReplaceAll(s, "-", " ")
}
