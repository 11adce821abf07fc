package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// barChart is a grouped bar chart with optional horizontal reference
// lines, drawn with the standard library and a bitmap font.
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
	ink          = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grid         = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

func (c *barChart) render() image.Image {
	const (
		w, h                  = 960, 500
		left, right, top, bot = 80, 190, 40, 70
	)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	pw, ph := w-left-right, h-top-bot

	lo, hi := math.Inf(1), 0.0
	for _, g := range c.values {
		for _, v := range g {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	for _, r := range c.refs {
		lo, hi = math.Min(lo, r.value), math.Max(hi, r.value)
	}
	if hi == 0 {
		hi, lo = 1, 1
	}
	// y maps a value to a pixel row.
	var y func(v float64) int
	var ticks []float64
	if c.log {
		a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if b <= a {
			b = a + 1
		}
		y = func(v float64) int {
			v = math.Max(v, math.Pow(10, a))
			return top + ph - int(float64(ph)*(math.Log10(v)-a)/(b-a))
		}
		for e := a; e <= b; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		step := niceStep(hi * 1.1 / 5)
		top1 := step * math.Ceil(hi*1.1/step)
		y = func(v float64) int { return top + ph - int(float64(ph)*v/top1) }
		for t := 0.0; t <= top1+step/2; t += step {
			ticks = append(ticks, t)
		}
	}
	for _, t := range ticks {
		yy := y(t)
		hline(img, left, left+pw, yy, grid)
		label := fmtTick(t)
		text(img, left-8-7*len(label), yy+4, label, ink)
	}
	text(img, 8, top-14, c.unit, ink)
	text(img, left, 20, c.title, ink)

	gw := float64(pw) / float64(len(c.groups))
	bw := gw * 0.8 / float64(len(c.series))
	for gi, g := range c.groups {
		x0 := float64(left) + gw*float64(gi) + gw*0.1
		for si := range c.series {
			v := c.values[gi][si]
			if v <= 0 {
				continue
			}
			bx := int(x0 + bw*float64(si))
			rect(img, bx, y(v), int(x0+bw*float64(si+1))-1, top+ph, seriesColors[si%len(seriesColors)])
			label := fmtTick(v)
			if 7*len(label) <= int(bw)+10 {
				text(img, bx+int(bw)/2-7*len(label)/2, y(v)-3, label, ink)
			}
		}
		// Group labels, split on spaces over up to three lines.
		for li, line := range wrap(g, int(gw)/7) {
			text(img, int(x0+gw*0.4)-7*len(line)/2, top+ph+16+14*li, line, ink)
		}
	}
	for ri, r := range c.refs {
		col := refColors[ri%len(refColors)]
		yy := y(r.value)
		for x := left; x < left+pw; x += 10 {
			hline(img, x, min(x+6, left+pw), yy, col)
			hline(img, x, min(x+6, left+pw), yy+1, col)
		}
	}
	hline(img, left, left+pw, top+ph, ink)
	// Legend.
	ly := top + 10
	for si, s := range c.series {
		rect(img, left+pw+16, ly-9, left+pw+28, ly+1, seriesColors[si%len(seriesColors)])
		text(img, left+pw+34, ly, s, ink)
		ly += 18
	}
	for ri, r := range c.refs {
		col := refColors[ri%len(refColors)]
		hline(img, left+pw+16, left+pw+28, ly-4, col)
		hline(img, left+pw+16, left+pw+28, ly-3, col)
		for li, line := range wrap(r.label+" "+fmtTick(r.value), 22) {
			text(img, left+pw+34, ly+14*li, line, ink)
		}
		ly += 36
	}
	return img
}

func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = w
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	return append(lines, cur)
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*e {
			return m * e
		}
	}
	return 10 * e
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

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

func rect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
		if err := writePNG(filepath.Join(dir, "benchmarks-throughput.png"), tp.render()); err != nil {
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
		if err := writePNG(filepath.Join(dir, name), lc.render()); err != nil {
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
