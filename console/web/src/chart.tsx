import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

// Chart draws time series with uPlot. x is Unix seconds; each series has
// a label and a colour. The plot is made once and fed new data after.
export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
  // dash draws the line dashed (canvas setLineDash), so a series that
  // often equals another stays visible over it.
  dash?: number[];
}

// xRange fixes the x axis (say, to the month) instead of fitting the data,
// which with one point would span years. The y axis starts at zero.
export function Chart(props: { title: string; x: number[]; series: Series[]; unit: string; testid: string; xRange?: [number, number] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join("|");

  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, Math.min(900, el.current.clientWidth || 640));
    const opts: uPlot.Options = {
      title: props.title,
      width,
      height: 260,
      series: [
        {},
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          dash: s.dash,
          points: { show: true, size: 6 },
          value: (_u: uPlot, v: number | null) => (v == null ? "–" : `${v.toLocaleString()} ${props.unit}`),
        })),
      ],
      scales: {
        x: props.xRange ? { time: true, range: () => props.xRange! } : { time: true },
        y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [{}, { label: props.unit, size: 70 }],
    };
    plot.current = new uPlot(opts, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, props.title, props.unit, props.xRange?.[0], props.xRange?.[1]]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [props.x, props.series]);

  return (
    <figure class="chart" data-testid={props.testid} data-points={props.x.length} aria-label={props.title}>
      <div ref={el} />
    </figure>
  );
}

// BarChart draws one group of bars per category (a broker, say), one bar
// per series (one or two), with uPlot's bars path builder; x is the
// category's index.
export function BarChart(props: { title: string; categories: string[]; series: Series[]; unit: string; testid: string }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join("|") + "#" + props.categories.join("|");
  const x = props.categories.map((_, i) => i);

  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, Math.min(900, el.current.clientWidth || 640));
    const n = Math.max(1, props.series.length);
    const opts: uPlot.Options = {
      title: props.title,
      width,
      height: 240,
      series: [
        { value: (_u: uPlot, i: number) => props.categories[i] ?? "" },
        ...props.series.map((s, k) => ({
          label: s.label,
          stroke: s.color,
          fill: s.color,
          width: 1,
          points: { show: false },
          // Two series stand side by side, one left and one right of the
          // category's tick; one stands centred on it.
          paths: uPlot.paths.bars!({ size: [n === 2 ? 0.35 : 0.6, 80], align: n === 2 ? (k === 0 ? -1 : 1) : 0 }),
          value: (_u: uPlot, v: number | null) => (v == null ? "–" : `${v.toLocaleString()} ${props.unit}`),
        })),
      ],
      scales: {
        x: { time: false, range: () => [-0.6, props.categories.length - 0.4] },
        y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => (Number.isInteger(t) ? props.categories[t] ?? "" : "")), splits: () => x },
        { label: props.unit, size: 70 },
      ],
    };
    plot.current = new uPlot(opts, [x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, props.title, props.unit]);

  useEffect(() => {
    plot.current?.setData([x, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [props.series]);

  return (
    <figure class="chart" data-testid={props.testid} data-points={props.categories.length} aria-label={props.title}>
      <div ref={el} />
    </figure>
  );
}
