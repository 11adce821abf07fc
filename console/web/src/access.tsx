import { useState } from "preact/hooks";
import { ACL, AuditEntry, call, Credential, enc, List, ProblemError, RoleBinding, ServiceAccount } from "./api";
import { Confirm, fmtTime, Page, ProblemBox, toProblem, useLoad } from "./ui";

// Who may do what: the organisation's service accounts, a cluster's role
// bindings and Kafka ACLs, and the organisation's audit log. Every page
// only calls the REST API with the signed-in credential.

const roles = ["admin", "developer-read", "developer-write"];
const resourceTypes = ["topic", "group", "cluster", "transactional_id"];
const operations = ["all", "read", "write", "create", "delete", "alter", "describe", "cluster_action", "describe_configs", "alter_configs", "idempotent_write"];

function value(e: Event) {
  return (e.target as HTMLInputElement | HTMLSelectElement).value;
}

export function ServiceAccounts(props: { cred: Credential }) {
  const accounts = useLoad<List<ServiceAccount & { description?: string; created_at: string }>>(props.cred, "/v1/service-accounts?limit=1000");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<ProblemError | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      await call(props.cred, "POST", "/v1/service-accounts", { name, description: description || undefined });
      setName("");
      setDescription("");
      accounts.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }
  async function remove(id: string) {
    setDeleting(null);
    setError(null);
    try {
      await call(props.cred, "DELETE", `/v1/service-accounts/${enc(id)}`);
      accounts.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }
  return (
    <Page title="Service accounts">
      <ProblemBox error={accounts.error || error} />
      {deleting && <Confirm what="service account" name={deleting} onConfirm={() => remove(deleting)} onCancel={() => setDeleting(null)} />}
      {accounts.data && (
        <table data-testid="service-accounts">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Name</th>
              <th scope="col">Org admin</th>
              <th scope="col">Description</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {accounts.data.items.map((a) => (
              <tr key={a.id}>
                <td>
                  <code>{a.id}</code>
                </td>
                <td>{a.name}</td>
                <td>{a.org_admin ? "yes" : ""}</td>
                <td>{a.description}</td>
                <td>
                  <button class="danger" disabled={a.org_admin} onClick={() => setDeleting(a.id)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="card" onSubmit={submit} aria-labelledby="create-sa">
        <h2 id="create-sa">Create a service account</h2>
        <label>
          Name
          <input required value={name} onInput={(e) => setName(value(e))} data-testid="sa-name" />
        </label>
        <label>
          Description
          <input value={description} onInput={(e) => setDescription(value(e))} />
        </label>
        <button type="submit" data-testid="create-sa">
          Create
        </button>
      </form>
    </Page>
  );
}

// Access shows and changes who may do what on one cluster: role bindings
// for service accounts, and Kafka ACLs (a deny wins over every grant).
export function Access(props: { cred: Credential; cluster: string }) {
  const base = `/v1/clusters/${enc(props.cluster)}`;
  const bindings = useLoad<List<RoleBinding>>(props.cred, `${base}/role-bindings?limit=1000`);
  const acls = useLoad<List<ACL>>(props.cred, `${base}/acls?limit=1000`);
  const accounts = useLoad<List<ServiceAccount>>(props.cred, "/v1/service-accounts?limit=1000");
  const [error, setError] = useState<ProblemError | null>(null);
  const [sa, setSA] = useState("");
  const [role, setRole] = useState(roles[1]);
  const [acl, setACL] = useState({ principal: "", resource_type: "topic", resource_name: "", pattern_type: "literal", operation: "read", permission: "allow", host: "*" });

  async function act(f: () => Promise<unknown>, after: () => void) {
    setError(null);
    try {
      await f();
      after();
    } catch (err) {
      setError(toProblem(err));
    }
  }
  const bind = (e: Event) => {
    e.preventDefault();
    act(() => call(props.cred, "POST", `${base}/role-bindings`, { service_account_id: sa, role }), bindings.reload);
  };
  const addACL = (e: Event) => {
    e.preventDefault();
    act(() => call(props.cred, "POST", `${base}/acls`, acl), acls.reload);
  };
  const set = (k: keyof typeof acl) => (e: Event) => setACL({ ...acl, [k]: value(e) });
  return (
    <Page title="Access">
      <ProblemBox error={bindings.error || acls.error || error} />
      <h2>Role bindings</h2>
      {bindings.data && (
        <table data-testid="role-bindings">
          <thead>
            <tr>
              <th scope="col">Service account</th>
              <th scope="col">Role</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {bindings.data.items.map((b) => (
              <tr key={b.id}>
                <td>{b.service_account_id}</td>
                <td>{b.role}</td>
                <td>{fmtTime(b.created_at)}</td>
                <td>
                  <button class="danger" onClick={() => act(() => call(props.cred, "DELETE", `${base}/role-bindings/${enc(b.id)}`), bindings.reload)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="card row" onSubmit={bind} aria-label="Bind a role">
        <label>
          Service account
          <select required value={sa} onChange={(e) => setSA(value(e))} data-testid="bind-sa">
            <option value="">choose…</option>
            {accounts.data?.items.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} ({a.id})
              </option>
            ))}
          </select>
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(value(e))} data-testid="bind-role">
            {roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" data-testid="bind">
          Bind
        </button>
      </form>
      <h2>ACLs</h2>
      {acls.data && (
        <table data-testid="acls">
          <thead>
            <tr>
              <th scope="col">Principal</th>
              <th scope="col">Permission</th>
              <th scope="col">Operation</th>
              <th scope="col">Resource</th>
              <th scope="col">Host</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {acls.data.items.map((a) => (
              <tr key={a.id}>
                <td>{a.principal}</td>
                <td>{a.permission}</td>
                <td>{a.operation}</td>
                <td>
                  {a.resource_type} {a.resource_name} ({a.pattern_type})
                </td>
                <td>{a.host}</td>
                <td>
                  <button class="danger" onClick={() => act(() => call(props.cred, "DELETE", `${base}/acls/${enc(a.id)}`), acls.reload)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="card" onSubmit={addACL} aria-label="Create an ACL">
        <label>
          Principal
          <input required placeholder="User:sa-… or User:*" value={acl.principal} onInput={set("principal")} data-testid="acl-principal" />
        </label>
        <label>
          Permission
          <select value={acl.permission} onChange={set("permission")} data-testid="acl-permission">
            <option>allow</option>
            <option>deny</option>
          </select>
        </label>
        <label>
          Operation
          <select value={acl.operation} onChange={set("operation")} data-testid="acl-operation">
            {operations.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <label>
          Resource type
          <select value={acl.resource_type} onChange={set("resource_type")}>
            {resourceTypes.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Resource name
          <input required value={acl.resource_name} onInput={set("resource_name")} data-testid="acl-resource" />
        </label>
        <label>
          Pattern
          <select value={acl.pattern_type} onChange={set("pattern_type")}>
            <option>literal</option>
            <option>prefixed</option>
          </select>
        </label>
        <label>
          Host (IP or CIDR block)
          <input value={acl.host} onInput={set("host")} />
        </label>
        <button type="submit" data-testid="create-acl">
          Create ACL
        </button>
      </form>
    </Page>
  );
}

// AuditLog lists the organisation's audit log, newest first, a page at a
// time, filtered by action, principal and result.
export function AuditLog(props: { cred: Credential }) {
  const [filter, setFilter] = useState({ action: "", principal: "", result: "" });
  const [applied, setApplied] = useState(filter);
  const [cursor, setCursor] = useState("");
  const q = new URLSearchParams({ limit: "100" });
  for (const [k, v] of Object.entries(applied)) if (v) q.set(k, v);
  if (cursor) q.set("cursor", cursor);
  const rows = useLoad<List<AuditEntry>>(props.cred, `/v1/audit-log?${q}`);
  const set = (k: keyof typeof filter) => (e: Event) => setFilter({ ...filter, [k]: value(e) });
  return (
    <Page title="Audit log">
      <form
        class="card row"
        aria-label="Filter"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor("");
          setApplied(filter);
        }}
      >
        <label>
          Action
          <input placeholder="topic.delete" value={filter.action} onInput={set("action")} data-testid="audit-action" />
        </label>
        <label>
          Principal
          <input placeholder="User:sa-…" value={filter.principal} onInput={set("principal")} />
        </label>
        <label>
          Result
          <select value={filter.result} onChange={set("result")}>
            <option value="">any</option>
            <option>ok</option>
            <option>failed</option>
            <option>denied</option>
          </select>
        </label>
        <button type="submit" data-testid="audit-filter">
          Filter
        </button>
      </form>
      <ProblemBox error={rows.error} />
      {rows.data && (
        <>
          <table data-testid="audit">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Principal</th>
                <th scope="col">Via</th>
                <th scope="col">Action</th>
                <th scope="col">Resource</th>
                <th scope="col">Result</th>
                <th scope="col">Count</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {rows.data.items.map((r) => (
                <tr key={r.id}>
                  <td>{fmtTime(r.at)}</td>
                  <td>{r.principal}</td>
                  <td>{r.channel}</td>
                  <td>{r.action}</td>
                  <td>
                    {r.resource_type} {r.resource_name}
                  </td>
                  <td>
                    {r.result}
                    {r.detail && <span class="muted"> {r.detail}</span>}
                  </td>
                  <td>{r.count}</td>
                  <td>{r.source}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="row">
            {cursor && <button onClick={() => setCursor("")}>Newest</button>}
            {rows.data.next_cursor && <button onClick={() => setCursor(rows.data!.next_cursor!)}>Older</button>}
          </div>
        </>
      )}
    </Page>
  );
}
