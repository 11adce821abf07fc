import { Credential, enc, QuotaUsage } from "./api";
import { fmtTime, Page, ProblemBox, useEvery, useLoad } from "./ui";

// Quotas and throttling: the cluster's effective limits next to what it
// uses now (GET /v1/clusters/{id}/quota-usage, refreshed every few
// seconds), and whether its clients were throttled in the last hour.
// Read-only: limits are changed through the API (PATCH /v1/clusters/{id}).

const refreshMs = 5000;

function bytesRate(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB/s`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB/s`;
  return `${n.toFixed(0)} B/s`;
}

function bytes(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)} TB`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

interface Row {
  name: string;
  testid: string;
  used: number;
  limit: number;
  show: (n: number) => string;
  note?: string;
}

export function Quotas(props: { cred: Credential; cluster: string }) {
  const q = useLoad<QuotaUsage>(props.cred, `/v1/clusters/${enc(props.cluster)}/quota-usage`);
  useEvery(q.reload, refreshMs);
  const u = q.data;
  const rows: Row[] = u
    ? [
        { name: "Produce throughput", testid: "ingress", used: u.bytes_in_per_sec, limit: u.limits.ingress_mbps * 1e6, show: bytesRate },
        { name: "Fetch throughput", testid: "egress", used: u.bytes_out_per_sec, limit: u.limits.egress_mbps * 1e6, show: bytesRate },
        { name: "Requests", testid: "requests", used: u.requests_per_sec, limit: u.limits.max_requests_per_sec, show: (n) => `${n.toFixed(1)}/s` },
        { name: "Connections", testid: "connections", used: u.connections, limit: u.limits.max_connections, show: String },
        { name: "Partitions", testid: "partitions", used: u.partitions, limit: u.limits.max_partitions, show: String },
        { name: "Topics", testid: "topics", used: u.topics, limit: u.limits.max_topics, show: String },
        { name: "Consumer groups", testid: "groups", used: u.groups, limit: u.limits.max_groups, show: String, note: "with committed offsets" },
        {
          name: "Storage",
          testid: "storage",
          used: u.stored_bytes,
          limit: u.limits.max_storage_gb * 1e9,
          show: bytes,
          note: u.storage_sampled_at ? `sampled ${fmtTime(u.storage_sampled_at)}` : "not sampled yet",
        },
      ]
    : [];
  return (
    <Page title="Quotas and throttling">
      <ProblemBox error={q.error} />
      {u && (
        <>
          <p role="status" data-testid="throttled" data-throttled={u.last_throttled_at ? "yes" : "no"}>
            {u.last_throttled_at
              ? `Clients of this cluster were throttled at ${fmtTime(u.last_throttled_at)} (${u.throttle_seconds_per_sec.toFixed(2)} s of throttle per second now): they use more than a limit below allows.`
              : "No client of this cluster was throttled in the last hour."}
          </p>
          <table data-testid="quotas">
            <caption class="muted">
              Now, from the last load report of {u.brokers_reporting === 1 ? "the one live broker" : `${u.brokers_reporting} live brokers`}, as of{" "}
              {fmtTime(u.as_of)}. Limits hold for the whole pool.
            </caption>
            <thead>
              <tr>
                <th scope="col">Limit</th>
                <th scope="col">In use</th>
                <th scope="col">Limit</th>
                <th scope="col">Share used</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => {
                const pct = r.limit > 0 ? Math.min(100, (100 * r.used) / r.limit) : 0;
                return (
                  <tr key={r.testid} data-testid={`quota-${r.testid}`}>
                    <th scope="row">
                      {r.name}
                      {r.note && <div class="muted">{r.note}</div>}
                    </th>
                    <td>{r.show(r.used)}</td>
                    <td>{r.show(r.limit)}</td>
                    <td>
                      <meter min={0} max={100} low={70} high={90} optimum={0} value={pct} aria-label={`${r.name}: ${pct.toFixed(0)}% of the limit`} />{" "}
                      {pct < 1 && r.used > 0 ? "<1" : pct.toFixed(0)}%
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
    </Page>
  );
}
