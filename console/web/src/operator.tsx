import { useCallback, useMemo, useState } from "preact/hooks";
import { AutoscalerEvaluation, AutoscalerHistory, Broker, call, Credential, enc, Limits, List, Plan, ProblemError } from "./api";
import { BarChart, Chart } from "./chart";
import { fmtTime, Page, ProblemBox, toProblem, useEvery, useLoad } from "./ui";

// The operator's pages: the broker pool, the autoscaler's decisions over
// time, and the plans with their ceilings. They call operator-only
// endpoints; a tenant that types their URL gets the server's 403, which
// ProblemBox shows as a refusal.

function rate(bytesPerSec: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = bytesPerSec;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}


export function Pool(props: { cred: Credential }) {
  const brokers = useLoad<{ items: Broker[] }>(props.cred, "/v1/brokers");
  useEvery(brokers.reload, 5000);
  const all = brokers.data?.items ?? [];
  const live = all.filter((b) => b.state !== "expired");
  const zones = new Set(live.map((b) => b.rack || "—"));
  const categories = live.map((b) => `broker ${b.id}`);
  // Coordinator slots (64, spread evenly) would dwarf the partitions on
  // one axis; the table lists them.
  const counts = useMemo(() => [{ label: "partitions led", color: "#1d4ed8", values: live.map((b) => b.partitions) }], [brokers.data]);
  const load = useMemo(
    () => [
      { label: "bytes in", color: "#15803d", values: live.map((b) => Math.round(b.load.bytes_in_per_sec)) },
      { label: "bytes out", color: "#7c3aed", values: live.map((b) => Math.round(b.load.bytes_out_per_sec)) },
    ],
    [brokers.data],
  );
  return (
    <Page title="Broker pool">
      <ProblemBox error={brokers.error} />
      {brokers.data && (
        <>
          <p data-testid="pool-summary">
            {live.length} live {live.length === 1 ? "broker" : "brokers"} in {zones.size} {zones.size === 1 ? "zone" : "zones"}
            {all.length > live.length && <span class="muted"> ({all.length - live.length} expired)</span>}
          </p>
          <table data-testid="brokers">
            <caption class="muted">Load is each broker's last report, as the autoscaler and the rebalancer read it.</caption>
            <thead>
              <tr>
                <th scope="col">Broker</th>
                <th scope="col">Zone</th>
                <th scope="col">State</th>
                <th scope="col">Partitions</th>
                <th scope="col">Coordinator slots</th>
                <th scope="col">In</th>
                <th scope="col">Out</th>
                <th scope="col">CPU</th>
                <th scope="col">Connections</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {all.map((b) => (
                <tr key={b.id} data-testid="broker-row" class={b.state}>
                  <th scope="row">
                    {b.id} <span class="muted">{`${b.host}:${b.port}`}</span>
                  </th>
                  <td>{b.rack || <span class="muted">none</span>}</td>
                  <td>
                    <span class="tag">{b.state}</span>
                  </td>
                  <td>
                    {b.partitions}
                    {b.partitions_moving > 0 && <span class="muted"> ({b.partitions_moving} moving)</span>}
                  </td>
                  <td>{b.coordinator_slots}</td>
                  <td>{rate(b.load.bytes_in_per_sec)}</td>
                  <td>{rate(b.load.bytes_out_per_sec)}</td>
                  <td>
                    {b.load.cpu_cores_used.toFixed(2)}
                    {b.load.cpu_cores > 0 && <span class="muted"> / {b.load.cpu_cores} cores</span>}
                  </td>
                  <td>{b.load.connections}</td>
                  <td>{fmtTime(b.heartbeat_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {live.length > 0 && (
            <>
              <BarChart title="Partitions per broker" categories={categories} series={counts} unit="" testid="pool-partitions-chart" />
              <BarChart title="Load per broker" categories={categories} series={load} unit="B/s" testid="pool-load-chart" />
            </>
          )}
        </>
      )}
    </Page>
  );
}

// interesting keeps the decisions an operator reads: every scaling, and a
// hold when its reason (numbers aside) differs from the one before, as
// the autoscaler's log does.
function interesting(items: AutoscalerEvaluation[]): AutoscalerEvaluation[] {
  const out: AutoscalerEvaluation[] = [];
  let last = "";
  for (const ev of items) {
    const d = ev.decision;
    if (!d) continue;
    const kind = d.action + " " + d.reason.replace(/[-+]?[0-9][0-9.]*[a-zµ]*/g, "#");
    if (d.action !== "hold" || kind !== last) out.push(ev);
    last = kind;
  }
  return out.reverse();
}

const spans: [string, number][] = [
  ["last 15 minutes", 15 * 60],
  ["last hour", 3600],
  ["last 6 hours", 6 * 3600],
  ["last day", 24 * 3600],
  ["last week", 7 * 24 * 3600],
];

export function Autoscaler(props: { cred: Credential }) {
  const [span, setSpan] = useState(3600);
  // The query's since is fixed per choice and reload, so useLoad's path
  // changes only when the operator picks another span.
  const [tick, setTick] = useState(0);
  const since = useMemo(() => new Date(Date.now() - span * 1000).toISOString(), [span, tick]);
  const hist = useLoad<AutoscalerHistory>(props.cred, `/v1/autoscaler/decisions?since=${enc(since)}&limit=5000`);
  useEvery(
    useCallback(() => setTick((t) => t + 1), []),
    10000,
  );
  const items = hist.data?.items ?? [];
  const x = useMemo(() => items.map((ev) => Date.parse(ev.at) / 1000), [hist.data]);
  const series = useMemo(
    () => [
      { label: "load (brokers' worth)", color: "#b91c1c", values: items.map((ev) => ev.demand) },
      { label: "capacity (live brokers)", color: "#1d4ed8", values: items.map((ev) => ev.brokers) },
      { label: "target load", color: "#6b7280", values: items.map((ev) => (ev.target ? +(ev.brokers * ev.target).toFixed(3) : null)) },
      { label: "brokers wanted", color: "#15803d", dash: [6, 4], values: items.map((ev) => ev.decision?.to ?? null) },
    ],
    [hist.data],
  );
  const decisions = useMemo(() => interesting(items).slice(0, 100), [hist.data]);
  const latest = items.length ? items[items.length - 1] : null;
  return (
    <Page
      title="Autoscaler"
      actions={
        <label class="inline">
          Show
          <select value={span} onChange={(e) => setSpan(+(e.target as HTMLSelectElement).value)} data-testid="autoscaler-span">
            {spans.map(([l, s]) => (
              <option key={s} value={s}>
                {l}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <ProblemBox error={hist.error} />
      {hist.data && items.length === 0 && (
        <p data-testid="autoscaler-empty">
          No evaluations in this span: no control plane runs the autoscaler (<code>--autoscale</code>), or it has not evaluated yet.
        </p>
      )}
      {latest && (
        <p data-testid="autoscaler-latest">
          Now: {latest.brokers} live {latest.brokers === 1 ? "broker" : "brokers"}, load {latest.demand} brokers' worth
          {latest.decision && (
            <>
              {" "}
              — <strong>{latest.decision.action}</strong>: {latest.decision.reason}
            </>
          )}
        </p>
      )}
      {items.length > 0 && <Chart title="Load against capacity" x={x} series={series} unit="brokers" testid="autoscaler-chart" />}
      {decisions.length > 0 && (
        <table data-testid="decisions">
          <caption class="muted">Scalings, and holds whose reason changed, newest first.</caption>
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Decision</th>
              <th scope="col">Brokers</th>
              <th scope="col">Utilisation</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {decisions.map((ev) => (
              <tr key={ev.at}>
                <td>{fmtTime(ev.at)}</td>
                <td>
                  <span class="tag">{ev.decision!.action}</span>
                </td>
                <td>
                  {ev.decision!.from} → {ev.decision!.to}
                </td>
                <td>
                  {ev.decision!.utilisation} <span class="muted">(predicted {ev.decision!.predicted})</span>
                </td>
                <td>{ev.decision!.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

// The ceilings a plan sets, in the order and words of internal/limits.
const ceilingFields: [string, string][] = [
  ["ingress_mbps", "Ingress MB/s"],
  ["egress_mbps", "Egress MB/s"],
  ["max_requests_per_sec", "Requests/s"],
  ["max_connections", "Connections"],
  ["max_partitions", "Partitions"],
  ["max_topics", "Topics"],
  ["max_groups", "Consumer groups"],
  ["max_storage_gb", "Storage GB"],
  ["max_retention_ms", "Retention ms"],
  ["max_retention_bytes", "Retention bytes"],
  ["producer_ids_per_hour", "Producer ids/hour"],
  ["producer_id_burst", "Producer id burst"],
];

function PlanEditor(props: { cred: Credential; plan: Plan; onSaved: () => void }) {
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(ceilingFields.map(([f]) => [f, String(props.plan.ceilings[f] ?? "")])),
  );
  const [name, setName] = useState(props.plan.name);
  const [error, setError] = useState<ProblemError | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const ceilings: Limits = {};
    for (const [f] of ceilingFields) {
      const v = values[f].trim();
      if (v !== "" && Number(v) !== props.plan.ceilings[f]) ceilings[f] = Number(v);
    }
    try {
      await call(props.cred, "PATCH", `/v1/plans/${enc(props.plan.id)}`, { name, ceilings });
      props.onSaved();
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="card toolbar" onSubmit={submit} aria-label={`Edit plan ${props.plan.id}`} data-testid={`edit-plan-${props.plan.id}`}>
      <label>
        Name
        <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      {ceilingFields.map(([f, label]) => (
        <label key={f}>
          {label}
          <input
            inputMode="numeric"
            value={values[f]}
            onInput={(e) => setValues({ ...values, [f]: (e.target as HTMLInputElement).value })}
            data-testid={`ceiling-${f}`}
          />
        </label>
      ))}
      <ProblemBox error={error} />
      <button type="submit" disabled={busy} data-testid="save-plan">
        {busy ? "Saving…" : "Save ceilings"}
      </button>
    </form>
  );
}

export function Plans(props: { cred: Credential }) {
  const plans = useLoad<List<Plan>>(props.cred, "/v1/plans?limit=1000");
  const [editing, setEditing] = useState("");
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<ProblemError | null>(null);
  const [busy, setBusy] = useState(false);
  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await call(props.cred, "POST", "/v1/plans", { id: id.trim(), name: name.trim() });
      setId("");
      setName("");
      plans.reload();
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Page title="Plans">
      <ProblemBox error={plans.error} />
      {plans.data && (
        <div class="scroll">
          <table data-testid="plans">
            <caption class="muted">Each plan caps the limits of its organisations' clusters (a new plan starts at the widest limits allowed).</caption>
            <thead>
              <tr>
                <th scope="col">Plan</th>
                {ceilingFields.map(([f, label]) => (
                  <th scope="col" key={f}>
                    {label}
                  </th>
                ))}
                <th scope="col">
                  <span class="muted">Edit</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {plans.data.items.map((p) => (
                <tr key={p.id} data-testid="plan-row">
                  <th scope="row">
                    {p.name} <span class="muted">{p.id}</span>
                  </th>
                  {ceilingFields.map(([f]) => (
                    <td key={f}>{p.ceilings[f]?.toLocaleString() ?? "—"}</td>
                  ))}
                  <td>
                    <button type="button" onClick={() => setEditing(editing === p.id ? "" : p.id)} aria-expanded={editing === p.id}>
                      {editing === p.id ? "Close" : "Edit"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {plans.data?.items
        .filter((p) => p.id === editing)
        .map((p) => (
          <PlanEditor
            key={p.id + p.updated_at}
            cred={props.cred}
            plan={p}
            onSaved={() => {
              setEditing("");
              plans.reload();
            }}
          />
        ))}
      <form class="card" onSubmit={create} aria-labelledby="new-plan">
        <h2 id="new-plan">New plan</h2>
        <p class="muted">It starts with the widest ceilings and the default plan's prices; edit its ceilings after.</p>
        <label>
          Id (a slug, shown on invoices)
          <input required pattern="[a-z][a-z0-9\-]{0,63}" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} data-testid="plan-id" />
        </label>
        <label>
          Name
          <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} data-testid="plan-name" />
        </label>
        <ProblemBox error={error} />
        <button type="submit" disabled={busy} data-testid="create-plan">
          Create plan
        </button>
      </form>
    </Page>
  );
}
