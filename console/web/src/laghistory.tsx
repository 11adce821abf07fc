import { useEffect, useState } from "preact/hooks";
import { call, Credential, enc, LagHistory, LagSample, ProblemError } from "./api";
import { Chart } from "./chart";
import { ProblemBox, toProblem } from "./ui";

// LagHistoryChart charts a group's lag as the control plane sampled it
// (GET .../lag-history): it outlives the page, unlike the live chart.
// It pages through the range with next_since, then every 30 s asks for
// the samples after the newest it has.

const ranges: [string, number][] = [
  ["1 hour", 3600],
  ["6 hours", 6 * 3600],
  ["24 hours", 24 * 3600],
  ["7 days", 7 * 24 * 3600],
];
const palette = ["#0f172a", "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
// The partitions charted besides the total: the most lagging ones.
const maxPartitionSeries = 6;

export function LagHistoryChart(props: { cred: Credential; cluster: string; group: string }) {
  const [range, setRange] = useState(3600);
  const [samples, setSamples] = useState<LagSample[] | null>(null);
  const [error, setError] = useState<ProblemError | null>(null);

  useEffect(() => {
    let live = true;
    // What this range has loaded: a refresh asks only for the samples
    // after the newest, and drops those that left the range.
    let have: LagSample[] = [];
    let loading = false; // a slow load is not overlapped by the next
    async function load() {
      if (loading) return;
      loading = true;
      try {
        const base = `/v1/clusters/${enc(props.cluster)}/consumer-groups/${enc(props.group)}/lag-history`;
        let since = have.length > 0 ? have[have.length - 1].at : new Date(Date.now() - range * 1000).toISOString();
        const got: LagSample[] = [];
        for (let page = 0; page < 10; page++) {
          const h = await call<LagHistory>(props.cred, "GET", `${base}?since=${enc(since)}`);
          got.push(...h.samples);
          if (!h.next_since) break;
          since = h.next_since;
        }
        const from = Date.now() - range * 1000;
        have = have.concat(got).filter((s) => Date.parse(s.at) > from);
        if (live) {
          setSamples(have);
          setError(null);
        }
      } catch (err) {
        if (live) setError(toProblem(err));
      } finally {
        loading = false;
      }
    }
    load();
    const t = setInterval(load, 30_000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [props.cred, props.cluster, props.group, range]);

  const x = (samples ?? []).map((s) => Date.parse(s.at) / 1000);
  const peak = new Map<string, number>();
  for (const s of samples ?? []) {
    for (const p of s.partitions) {
      const k = `${p.topic}/${p.partition}`;
      peak.set(k, Math.max(peak.get(k) ?? 0, p.lag));
    }
  }
  const top = [...peak.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, maxPartitionSeries)
    .map(([k]) => k);
  const series = [
    { label: "total", color: palette[0], values: (samples ?? []).map((s) => s.total_lag) },
    ...top.map((k, i) => ({
      label: k,
      color: palette[(i + 1) % palette.length],
      values: (samples ?? []).map((s) => s.partitions.find((p) => `${p.topic}/${p.partition}` === k)?.lag ?? null),
    })),
  ];
  const now = Date.now() / 1000;
  return (
    <section aria-labelledby="lag-history-title">
      <h2 id="lag-history-title">Lag history</h2>
      <label>
        Range
        <select value={range} onChange={(e) => setRange(Number((e.target as HTMLSelectElement).value))} data-testid="lag-history-range">
          {ranges.map(([label, secs]) => (
            <option key={secs} value={secs}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <ProblemBox error={error} />
      {samples &&
        (samples.length === 0 ? (
          <p data-testid="lag-history-empty">No samples in this range yet: the control plane samples lag every minute (--lag-sample-interval).</p>
        ) : (
          <Chart
            title={`Total lag and the ${top.length} most lagging partitions, sampled by the control plane`}
            x={x}
            xRange={[now - range, now]}
            series={series}
            unit="records"
            testid="lag-history-chart"
          />
        ))}
    </section>
  );
}
