import { useState } from "preact/hooks";
import { BudgetAlert, call, Credential, download, enc, Estimate, Invoice, List, ProblemError } from "./api";
import { Confirm, fmtTime, ProblemBox, toProblem, useLoad } from "./ui";

// The billing sections of the Usage page: invoices (each downloadable as
// CSV, which the REST API renders: Accept: text/csv) and budget alerts,
// each shown against the running month's estimate.

export function Invoices(props: { cred: Credential }) {
  const invoices = useLoad<List<Invoice>>(props.cred, "/v1/billing/invoices?limit=24");
  const [error, setError] = useState<ProblemError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  async function csv(inv: Invoice) {
    setBusy(inv.id);
    setError(null);
    setDone(null);
    try {
      const f = await download(props.cred, `/v1/billing/invoices/${enc(inv.id)}`, "text/csv");
      const rows = f.text.trim().split("\n").length - 1;
      setDone(`Downloaded ${f.filename}: ${rows} rows (line items and totals).`);
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="invoices-title">
      <h2 id="invoices-title">Invoices</h2>
      <ProblemBox error={invoices.error || error} />
      {done && (
        <p role="status" data-testid="csv-done">
          {done}
        </p>
      )}
      {invoices.data && (
        <table data-testid="invoices">
          <thead>
            <tr>
              <th scope="col">Month</th>
              <th scope="col">Status</th>
              <th scope="col">Subtotal</th>
              <th scope="col">Credits</th>
              <th scope="col">Adjustments</th>
              <th scope="col">Total</th>
              <th scope="col">Download</th>
            </tr>
          </thead>
          <tbody>
            {invoices.data.items.map((inv) => (
              <tr key={inv.id} data-invoice={inv.id}>
                <td>{inv.month}</td>
                <td>{inv.status}</td>
                <td>
                  {inv.subtotal} {inv.currency}
                </td>
                <td>{inv.credits}</td>
                <td>{inv.adjustments}</td>
                <td>
                  <strong>
                    {inv.total} {inv.currency}
                  </strong>
                </td>
                <td>
                  <button onClick={() => csv(inv)} disabled={busy === inv.id} data-testid={`csv-${inv.month}`} aria-label={`Download the invoice of ${inv.month} as CSV`}>
                    {busy === inv.id ? "Downloading…" : "CSV"}
                  </button>
                </td>
              </tr>
            ))}
            {invoices.data.items.length === 0 && (
              <tr>
                <td colSpan={7}>No invoices yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

// alertState compares an alert's threshold with the month's estimate.
function alertState(a: BudgetAlert, e: Estimate | null): { label: string; cls: string } {
  if (!e) return { label: "–", cls: "" };
  const t = Number(a.threshold);
  if (Number(e.month_to_date) >= t) return { label: `Reached (${e.month_to_date} ${e.currency} so far)`, cls: "tag danger" };
  if (Number(e.projected) >= t) return { label: `Projected to be reached (${e.projected} ${e.currency})`, cls: "tag warn" };
  return { label: "Below", cls: "tag" };
}

export function BudgetAlerts(props: { cred: Credential; estimate: Estimate | null }) {
  const alerts = useLoad<List<BudgetAlert>>(props.cred, "/v1/billing/budget-alerts?limit=1000");
  const [name, setName] = useState("");
  const [threshold, setThreshold] = useState("");
  const [webhook, setWebhook] = useState("");
  const [error, setError] = useState<ProblemError | null>(null);
  const [busy, setBusy] = useState(false);
  const [fresh, setFresh] = useState<BudgetAlert | null>(null);
  const [deleting, setDeleting] = useState<BudgetAlert | null>(null);

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const a = await call<BudgetAlert>(props.cred, "POST", "/v1/billing/budget-alerts", { name, threshold, webhook_url: webhook });
      setFresh(a);
      setName("");
      setThreshold("");
      setWebhook("");
      alerts.reload();
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(false);
    }
  }

  async function remove(a: BudgetAlert) {
    setDeleting(null);
    setError(null);
    try {
      await call(props.cred, "DELETE", `/v1/billing/budget-alerts/${enc(a.id)}`);
      alerts.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }

  return (
    <section aria-labelledby="alerts-title">
      <h2 id="alerts-title">Budget alerts</h2>
      <p class="muted">An alert's webhook is called once a month when the month's charges reach its threshold.</p>
      <ProblemBox error={alerts.error} />
      {fresh?.secret && (
        <div class="secret" role="status" data-testid="alert-secret">
          <strong>Alert {fresh.name} created.</strong> Its webhook signing secret is shown once:
          <pre>{fresh.secret}</pre>
          <button onClick={() => setFresh(null)}>Done</button>
        </div>
      )}
      {deleting && <Confirm what="budget alert" name={deleting.name} onConfirm={() => remove(deleting)} onCancel={() => setDeleting(null)} />}
      {alerts.data && (
        <table data-testid="budget-alerts">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Threshold</th>
              <th scope="col">This month</th>
              <th scope="col">Webhook</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {alerts.data.items.map((a) => {
              const s = alertState(a, props.estimate);
              return (
                <tr key={a.id} data-alert={a.name}>
                  <td>{a.name}</td>
                  <td>
                    {a.threshold} {props.estimate?.currency}
                  </td>
                  <td>
                    <span class={s.cls} data-testid={`alert-state-${a.name}`}>
                      {s.label}
                    </span>
                  </td>
                  <td>
                    <code>{a.webhook_url}</code>
                  </td>
                  <td>{fmtTime(a.created_at)}</td>
                  <td>
                    <button class="danger" onClick={() => setDeleting(a)} data-testid={`delete-alert-${a.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
            {alerts.data.items.length === 0 && (
              <tr>
                <td colSpan={6}>No budget alerts.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {!alerts.error && (
        <form class="card" onSubmit={create} aria-labelledby="create-alert">
          <h3 id="create-alert">Create a budget alert</h3>
          <label>
            Name
            <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} data-testid="alert-name" />
          </label>
          <label>
            Monthly threshold{props.estimate ? ` (${props.estimate.currency})` : ""}
            <input
              required
              inputMode="decimal"
              value={threshold}
              placeholder="500.00"
              onInput={(e) => setThreshold((e.target as HTMLInputElement).value)}
              data-testid="alert-threshold"
            />
          </label>
          <label>
            Webhook URL
            <input
              required
              type="url"
              value={webhook}
              placeholder="https://example.com/eddy-budget"
              onInput={(e) => setWebhook((e.target as HTMLInputElement).value)}
              data-testid="alert-webhook"
            />
          </label>
          <ProblemBox error={error} />
          <button type="submit" disabled={busy} data-testid="create-alert">
            {busy ? "Creating…" : "Create alert"}
          </button>
        </form>
      )}
    </section>
  );
}
