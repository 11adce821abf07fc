// The REST API as the console uses it: every call carries the signed-in
// credential, and every error is the server's problem+json, so pages show
// its title and detail rather than a status code.

export type Credential =
  | { kind: "key"; id: string; secret: string }
  | { kind: "operator"; token: string };

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  request_id?: string;
  errors?: { field: string; message: string }[];
}

export class ProblemError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
  }
  get status() {
    return this.problem.status;
  }
}

const storageKey = "eddy.credential";

// The credential lives in sessionStorage: it goes when the tab closes.
export function loadCredential(): Credential | null {
  const raw = sessionStorage.getItem(storageKey);
  return raw ? (JSON.parse(raw) as Credential) : null;
}

export function saveCredential(c: Credential | null) {
  if (c) sessionStorage.setItem(storageKey, JSON.stringify(c));
  else sessionStorage.removeItem(storageKey);
}

function authHeader(c: Credential): string {
  return c.kind === "key" ? "Basic " + btoa(`${c.id}:${c.secret}`) : "Bearer " + c.token;
}

export async function call<T>(cred: Credential, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: authHeader(cred), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ProblemError({ type: "network", title: "The control plane does not answer", status: 0, detail: String(e) });
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  if (!resp.ok) {
    let p: Problem;
    try {
      p = JSON.parse(text) as Problem;
    } catch {
      p = { type: "about:blank", title: resp.statusText || "Error", status: resp.status, detail: text };
    }
    throw new ProblemError(p);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface List<T> {
  items: T[];
  next_cursor?: string;
}

export interface Cluster {
  id: string;
  name: string;
  status: string;
  plan: string;
  partitions_used: number;
  kafka: { bootstrap_servers: string; sasl_mechanisms: string[] };
  created_at: string;
}

export interface Partition {
  partition: number;
  leader: number | null;
  leader_epoch: number;
  high_watermark: number;
}

export interface Topic {
  id: string;
  name: string;
  partition_count: number;
  configs: Record<string, string>;
  partitions: Partition[];
  created_at: string;
}

export interface RecordHeader {
  key: string;
  value: string;
  encoding?: "text" | "base64";
}

export interface KafkaRecord {
  partition: number;
  offset: number;
  timestamp: string;
  key: string | null;
  key_encoding: "text" | "base64";
  value: string | null;
  value_encoding: "text" | "base64";
  headers: RecordHeader[];
}

export interface Records {
  records: KafkaRecord[];
  next_offset: number;
  log_start_offset: number;
  high_watermark: number;
}

export interface ConsumerGroup {
  group_id: string;
  partitions: number;
  total_lag: number;
  last_commit_at: string;
}

export interface GroupOffset {
  topic: string;
  partition: number;
  committed_offset: number;
  high_watermark: number;
  lag: number;
}

export interface ConsumerGroupDetail extends ConsumerGroup {
  offsets: GroupOffset[];
}

export interface ServiceAccount {
  id: string;
  name: string;
  org_admin: boolean;
}

export interface APIKey {
  id: string;
  service_account_id: string;
  cluster_id?: string;
  description: string;
  secret?: string;
  created_at: string;
}

export interface UsageItem {
  cluster_id: string;
  metric: string;
  start: string;
  end: string;
  quantity: string;
  units: string;
  unit: string;
}

export interface Usage {
  granularity: string;
  from: string;
  to: string;
  items: UsageItem[];
}

export interface Estimate {
  month: string;
  currency: string;
  month_to_date: string;
  projected: string;
}

export const enc = encodeURIComponent;

export interface RoleBinding {
  id: string;
  service_account_id: string;
  role: string;
  created_at: string;
}

export interface ACL {
  id: string;
  principal: string;
  resource_type: string;
  resource_name: string;
  pattern_type: string;
  operation: string;
  permission: string;
  host: string;
  created_at: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  cluster_id?: string;
  principal: string;
  source?: string;
  channel: string;
  action: string;
  resource_type?: string;
  resource_name?: string;
  result: string;
  detail?: string;
  count: number;
}

// The operator's views (GET /v1/brokers, /v1/autoscaler/decisions, /v1/plans).

export interface BrokerLoad {
  reported_at?: string;
  bytes_in_per_sec: number;
  bytes_out_per_sec: number;
  requests_per_sec: number;
  connections: number;
  cpu_cores_used: number;
  cpu_cores: number;
  memory_bytes: number;
}

export interface Broker {
  id: number;
  host: string;
  port: number;
  rack?: string;
  state: "live" | "draining" | "expired";
  session_epoch: number;
  heartbeat_at: string;
  expires_at: string;
  partitions: number;
  partitions_moving: number;
  coordinator_slots: number;
  load: BrokerLoad;
}

export interface AutoscalerDecision {
  action: "hold" | "scale-out" | "scale-in";
  from: number;
  to: number;
  reason: string;
  utilisation: number;
  predicted: number;
}

export interface AutoscalerEvaluation {
  at: string;
  brokers: number;
  bytes_in_per_sec: number;
  bytes_out_per_sec: number;
  cpu_cores_used: number;
  connections: number;
  demand: number;
  target?: number;
  decision?: AutoscalerDecision;
}

export interface AutoscalerHistory {
  since: string;
  items: AutoscalerEvaluation[];
}

// Limits as the REST API writes them (internal/limits): a plan's ceilings.
export type Limits = Record<string, number>;

export interface Plan {
  id: string;
  name: string;
  currency: string;
  ceilings: Limits;
  created_at: string;
  updated_at: string;
}

export interface InvoiceLine {
  cluster_id: string;
  cluster_name: string;
  metric: string;
  unit: string;
  unit_price: string;
  units: string;
  billable_units: string;
  amount: string;
}

export interface Invoice {
  id: string;
  month: string;
  status: string;
  currency: string;
  subtotal: string;
  credits: string;
  adjustments: string;
  total: string;
  lines?: InvoiceLine[];
}

export interface BudgetAlert {
  id: string;
  name: string;
  threshold: string;
  webhook_url: string;
  secret?: string;
  created_at: string;
}

export interface LagSample {
  at: string;
  total_lag: number;
  partitions: { topic: string; partition: number; lag: number }[];
}

export interface LagHistory {
  group_id: string;
  samples: LagSample[];
  next_since?: string;
}

export interface QuotaUsage {
  cluster_id: string;
  as_of: string;
  limits: Limits;
  bytes_in_per_sec: number;
  bytes_out_per_sec: number;
  requests_per_sec: number;
  connections: number;
  brokers_reporting: number;
  partitions: number;
  topics: number;
  groups: number;
  stored_bytes: number;
  storage_sampled_at?: string;
  throttle_seconds_per_sec: number;
  last_throttled_at?: string;
}

// download fetches path as the signed-in credential with the given
// Accept type and hands it to the browser as a file, named as the
// server's Content-Disposition says. It returns the file's name and text.
export async function download(cred: Credential, path: string, accept: string): Promise<{ filename: string; text: string }> {
  let resp: Response;
  try {
    resp = await fetch(path, { headers: { Authorization: authHeader(cred), Accept: accept } });
  } catch (e) {
    throw new ProblemError({ type: "network", title: "The control plane does not answer", status: 0, detail: String(e) });
  }
  const text = await resp.text();
  if (!resp.ok) {
    let p: Problem;
    try {
      p = JSON.parse(text) as Problem;
    } catch {
      p = { type: "about:blank", title: resp.statusText || "Error", status: resp.status, detail: text };
    }
    throw new ProblemError(p);
  }
  const m = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") ?? "");
  const filename = m ? m[1] : "download";
  const url = URL.createObjectURL(new Blob([text], { type: resp.headers.get("Content-Type") ?? "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return { filename, text };
}
