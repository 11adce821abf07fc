import { useState } from "preact/hooks";
import { APIKey, call, Cluster, Credential, enc, Estimate, List, ProblemError, ServiceAccount, Usage } from "./api";
import { BudgetAlerts, Invoices } from "./billing";
import { Chart } from "./chart";
import { Confirm, fmtTime, Page, ProblemBox, toProblem, useLoad } from "./ui";

// The organisation's pages (sign in, clusters, API keys, usage) and the
// operator's view.

export function SignIn(props: { onSignIn: (c: Credential) => void }) {
  const [kind, setKind] = useState<"key" | "operator">("key");
  const [id, setId] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<ProblemError | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const cred: Credential = kind === "key" ? { kind, id: id.trim(), secret: secret.trim() } : { kind, token: secret.trim() };
    try {
      // A 403 still proves the credential: a developer's key may browse
      // and produce records but not manage the organisation.
      await call(cred, "GET", kind === "key" ? "/v1/clusters?limit=1" : "/v1/organizations?limit=1").catch((err) => {
        if (toProblem(err).status !== 403) throw err;
      });
      props.onSignIn(cred);
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Eddy</h1>
        <fieldset>
          <legend>With</legend>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === "key"} onChange={() => setKind("key")} /> an API key
          </label>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === "operator"} onChange={() => setKind("operator")} data-testid="sign-in-operator" /> the
            operator token
          </label>
        </fieldset>
        {kind === "key" && (
          <label>
            API key id
            <input required autoComplete="username" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} data-testid="key-id" />
          </label>
        )}
        <label>
          {kind === "key" ? "Secret" : "Operator token"}
          <input
            required
            type="password"
            autoComplete="current-password"
            value={secret}
            onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
            data-testid="key-secret"
          />
        </label>
        <ProblemBox error={error} />
        <button type="submit" disabled={busy} data-testid="sign-in">
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

export function Clusters(props: { cred: Credential }) {
  const clusters = useLoad<List<Cluster>>(props.cred, "/v1/clusters?limit=1000");
  return (
    <Page title="Clusters">
      <ProblemBox error={clusters.error} />
      {clusters.data && (
        <table data-testid="clusters">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Bootstrap</th>
              <th scope="col">Partitions</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {clusters.data.items.map((c) => (
              <tr key={c.id}>
                <td>
                  <a href={`#/clusters/${enc(c.id)}/topics`}>{c.name}</a> <span class="muted">{c.id}</span>
                </td>
                <td>{c.status}</td>
                <td>
                  <code>{c.kafka.bootstrap_servers}</code>
                </td>
                <td>{c.partitions_used}</td>
                <td>{fmtTime(c.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {clusters.data?.items.map((c) => (
        <Connect key={c.id} cluster={c} keyID={props.cred.kind === "key" ? props.cred.id : "<key>"} />
      ))}
    </Page>
  );
}

// Connect shows client settings for a cluster with its bootstrap and the
// signed-in key filled in. "<key>@<cluster>" names the cluster, which an
// organisation-wide key needs and a cluster's own key may repeat.
function Connect(props: { cluster: Cluster; keyID: string }) {
  const b = props.cluster.kafka.bootstrap_servers;
  const user = `${props.keyID}@${props.cluster.id}`;
  return (
    <details class="card">
      <summary>Connect a client to {props.cluster.name}</summary>
      <h3>kcat</h3>
      <pre>{`kcat -b ${b} -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \\
  -X sasl.username=${user} -X sasl.password=$EDDY_API_SECRET -L`}</pre>
      <h3>franz-go</h3>
      <pre>{`cl, err := kgo.NewClient(kgo.SeedBrokers("${b}"),
    kgo.SASL(plain.Auth{User: "${user}", Pass: os.Getenv("EDDY_API_SECRET")}.AsMechanism()))`}</pre>
      <h3>librdkafka / Java properties</h3>
      <pre>{`bootstrap.servers=${b}
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.username=${user}
sasl.password=<secret>
# Java: sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="${user}" password="<secret>";`}</pre>
    </details>
  );
}

// APIKeys creates, rotates and revokes keys. A secret is shown once, when
// the key is made; rotating makes a new key for the same service account
// and cluster and then revokes the old one.
export function APIKeys(props: { cred: Credential }) {
  const keys = useLoad<List<APIKey>>(props.cred, "/v1/api-keys?limit=1000");
  const accounts = useLoad<List<ServiceAccount>>(props.cred, "/v1/service-accounts?limit=1000");
  const clusters = useLoad<List<Cluster>>(props.cred, "/v1/clusters?limit=1000");
  const [sa, setSA] = useState("");
  const [cluster, setCluster] = useState("");
  const [description, setDescription] = useState("");
  const [fresh, setFresh] = useState<APIKey | null>(null);
  const [error, setError] = useState<ProblemError | null>(null);
  const [revoking, setRevoking] = useState<APIKey | null>(null);
  const [busy, setBusy] = useState("");

  async function create(req: { service_account_id: string; cluster_id?: string; description?: string }) {
    return call<APIKey>(props.cred, "POST", "/v1/api-keys", req);
  }

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      setFresh(await create({ service_account_id: sa, cluster_id: cluster || undefined, description: description || undefined }));
      keys.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }

  async function rotate(k: APIKey) {
    setError(null);
    setBusy(k.id);
    try {
      const n = await create({ service_account_id: k.service_account_id, cluster_id: k.cluster_id || undefined, description: k.description || undefined });
      // The new secret is shown only once: show it before deleting the old
      // key, so a failed DELETE reports an error but does not lose it.
      setFresh(n);
      await call(props.cred, "DELETE", `/v1/api-keys/${enc(k.id)}`);
    } catch (err) {
      setError(toProblem(err));
    } finally {
      keys.reload();
      setBusy("");
    }
  }

  async function revoke(k: APIKey) {
    setRevoking(null);
    setError(null);
    try {
      await call(props.cred, "DELETE", `/v1/api-keys/${enc(k.id)}`);
      keys.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }

  const signedIn = props.cred.kind === "key" ? props.cred.id : "";
  return (
    <Page title="API keys">
      <ProblemBox error={keys.error || error} />
      {fresh && (
        <div class="secret" role="status" data-testid="new-secret">
          <strong>New key {fresh.id}.</strong> Copy its secret now; it is not shown again:
          <pre>{fresh.secret}</pre>
          <button onClick={() => setFresh(null)}>Done</button>
        </div>
      )}
      {revoking && <Confirm what="API key" name={revoking.id} onConfirm={() => revoke(revoking)} onCancel={() => setRevoking(null)} />}
      {keys.data && (
        <table data-testid="api-keys">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Service account</th>
              <th scope="col">Cluster</th>
              <th scope="col">Description</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {keys.data.items.map((k) => (
              <tr key={k.id} data-key={k.id}>
                <td>
                  <code>{k.id}</code> {k.id === signedIn && <span class="tag">you</span>}
                </td>
                <td>{k.service_account_id}</td>
                <td>{k.cluster_id || "all"}</td>
                <td>{k.description}</td>
                <td>{fmtTime(k.created_at)}</td>
                <td class="row">
                  <button onClick={() => rotate(k)} disabled={busy === k.id || k.id === signedIn} data-testid={`rotate-${k.id}`}>
                    {busy === k.id ? "Rotating…" : "Rotate"}
                  </button>
                  <button class="danger" onClick={() => setRevoking(k)} disabled={k.id === signedIn}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {accounts.data && (
        <form class="card" onSubmit={submit} aria-labelledby="create-key">
          <h2 id="create-key">Create a key</h2>
          <label>
            Service account
            <select required value={sa} onChange={(e) => setSA((e.target as HTMLSelectElement).value)}>
              <option value="">choose…</option>
              {accounts.data.items.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} ({a.id})
                </option>
              ))}
            </select>
          </label>
          <label>
            Cluster
            <select value={cluster} onChange={(e) => setCluster((e.target as HTMLSelectElement).value)}>
              <option value="">every cluster of the organisation</option>
              {clusters.data?.items.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Description
            <input value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Create key</button>
        </form>
      )}
    </Page>
  );
}

// Usage charts bytes in and out and storage per day of the current month.
export function UsagePage(props: { cred: Credential }) {
  const usage = useLoad<Usage>(props.cred, "/v1/billing/usage?granularity=day");
  const estimate = useLoad<Estimate>(props.cred, "/v1/billing/estimate");
  const days = new Map<number, Record<string, number>>();
  for (const it of usage.data?.items ?? []) {
    const x = Date.parse(it.start) / 1000;
    const d = days.get(x) ?? {};
    d[it.metric] = (d[it.metric] ?? 0) + Number(it.metric === "storage" ? it.units : it.quantity);
    days.set(x, d);
  }
  const x = [...days.keys()].sort((a, b) => a - b);
  // Bytes in the largest unit that keeps the busiest day at 1 or more.
  const peak = Math.max(0, ...x.map((k) => Math.max(days.get(k)!.ingress ?? 0, days.get(k)!.egress ?? 0)));
  const [scale, unit] = peak >= 1e9 ? [1e9, "GB"] : peak >= 1e6 ? [1e6, "MB"] : [1e3, "KB"];
  const bytes = (m: string) => x.map((k) => (days.get(k)![m] ?? 0) / scale);
  const range: [number, number] | undefined = usage.data
    ? [Date.parse(usage.data.from) / 1000, Date.parse(usage.data.to) / 1000 - 1]
    : undefined;
  return (
    <Page title="Usage and cost">
      <ProblemBox error={usage.error || estimate.error} />
      {estimate.data && (
        <p role="status" data-testid="estimate">
          {estimate.data.month}: {estimate.data.month_to_date} {estimate.data.currency} so far, about {estimate.data.projected}{" "}
          {estimate.data.currency} projected for the month.
        </p>
      )}
      {usage.data &&
        (x.length === 0 ? (
          <p data-testid="usage-empty">No usage recorded this month yet.</p>
        ) : (
          <>
            <Chart
              title="Bytes in and out per day"
              testid="usage-chart"
              unit={unit}
              x={x}
              xRange={range}
              series={[
                { label: "in (produce)", color: "#2563eb", values: bytes("ingress") },
                { label: "out (fetch)", color: "#16a34a", values: bytes("egress") },
              ]}
            />
            <Chart
              title="Storage per day"
              testid="storage-chart"
              unit="GB-month"
              x={x}
              xRange={range}
              series={[{ label: "storage", color: "#9333ea", values: x.map((k) => days.get(k)!.storage ?? 0) }]}
            />
          </>
        ))}
      {/* The estimate rates the month first, so its draft invoice is listed. */}
      {(estimate.data || estimate.error) && <Invoices cred={props.cred} />}
      <BudgetAlerts cred={props.cred} estimate={estimate.data} />
    </Page>
  );
}

export function Organizations(props: { cred: Credential }) {
  const orgs = useLoad<List<{ id: string; name: string; created_at: string }>>(props.cred, "/v1/organizations?limit=1000");
  const plans = useLoad<List<{ id: string; name: string }>>(props.cred, "/v1/plans?limit=1000");
  return (
    <Page title="Operator">
      <ProblemBox error={orgs.error || plans.error} />
      <h2>Organisations</h2>
      <ul data-testid="orgs">
        {orgs.data?.items.map((o) => (
          <li key={o.id}>
            {o.name} <span class="muted">{o.id}</span>
          </li>
        ))}
      </ul>
      <h2>Plans</h2>
      <ul>
        {plans.data?.items.map((p) => (
          <li key={p.id}>{p.name || p.id}</li>
        ))}
      </ul>
    </Page>
  );
}
