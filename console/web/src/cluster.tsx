import { useEffect, useRef, useState } from "preact/hooks";
import {
  call,
  ConsumerGroup,
  ConsumerGroupDetail,
  Credential,
  enc,
  KafkaRecord,
  List,
  ProblemError,
  Records,
  Topic,
} from "./api";
import { Chart } from "./chart";
import { LagHistoryChart } from "./laghistory";
import { Confirm, fmtTime, Page, ProblemBox, toProblem, useLoad } from "./ui";

// The pages of one cluster: topics, a topic's configs, the message
// browser and consumer groups with their lag.

function parseConfigs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l) continue;
    const i = l.indexOf("=");
    if (i < 0) out[l] = "";
    else out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return out;
}

export function Topics(props: { cred: Credential; cluster: string }) {
  const path = `/v1/clusters/${enc(props.cluster)}/topics?limit=1000`;
  const topics = useLoad<List<Topic>>(props.cred, path);
  const [name, setName] = useState("");
  const [partitions, setPartitions] = useState("3");
  const [configs, setConfigs] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ProblemError | null>(null);

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await call(props.cred, "POST", `/v1/clusters/${enc(props.cluster)}/topics`, {
        name,
        partitions: Number(partitions),
        configs: parseConfigs(configs),
      });
      setName("");
      setConfigs("");
      topics.reload();
    } catch (err) {
      setError(toProblem(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Page title="Topics">
      <ProblemBox error={topics.error} />
      {topics.data && (
        <table data-testid="topics">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Partitions</th>
              <th scope="col">Records (sum of high watermarks)</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {topics.data.items.map((t) => (
              <tr key={t.id}>
                <td>
                  <a href={`#/clusters/${enc(props.cluster)}/topics/${enc(t.name)}`}>{t.name}</a>
                </td>
                <td>{t.partition_count}</td>
                <td>{t.partitions.reduce((n, p) => n + p.high_watermark, 0)}</td>
                <td>{fmtTime(t.created_at)}</td>
              </tr>
            ))}
            {topics.data.items.length === 0 && (
              <tr>
                <td colSpan={4}>No topics yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {!topics.error && (
        <form class="card" onSubmit={create} aria-labelledby="create-topic">
          <h2 id="create-topic">Create a topic</h2>
          <label>
            Name
            <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} data-testid="topic-name" />
          </label>
          <label>
            Partitions
            <input type="number" min={1} value={partitions} onInput={(e) => setPartitions((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            <span>
              Configs (one <code>key=value</code> a line)
            </span>
            <textarea rows={3} value={configs} placeholder="retention.ms=604800000" onInput={(e) => setConfigs((e.target as HTMLTextAreaElement).value)} />
          </label>
          <ProblemBox error={error} />
          <button type="submit" disabled={busy} data-testid="create-topic">
            {busy ? "Creating…" : "Create topic"}
          </button>
        </form>
      )}
    </Page>
  );
}

export function TopicDetail(props: { cred: Credential; cluster: string; topic: string }) {
  const path = `/v1/clusters/${enc(props.cluster)}/topics/${enc(props.topic)}`;
  const topic = useLoad<Topic>(props.cred, path);
  const [configs, setConfigs] = useState<string | null>(null);
  const [error, setError] = useState<ProblemError | null>(null);
  const [saved, setSaved] = useState(false);
  const [confirming, setConfirming] = useState(false);

  const text =
    configs ??
    (topic.data
      ? Object.entries(topic.data.configs)
          .map(([k, v]) => `${k}=${v}`)
          .join("\n")
      : "");

  async function save(e: Event) {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await call(props.cred, "PATCH", path, { configs: parseConfigs(text) });
      setSaved(true);
      setConfigs(null);
      topic.reload();
    } catch (err) {
      setError(toProblem(err));
    }
  }

  async function remove() {
    setError(null);
    try {
      await call(props.cred, "DELETE", path);
      location.hash = `#/clusters/${enc(props.cluster)}/topics`;
    } catch (err) {
      setConfirming(false);
      setError(toProblem(err));
    }
  }

  return (
    <Page
      title={`Topic ${props.topic}`}
      actions={
        <div class="row">
          <a class="button" href={`#/clusters/${enc(props.cluster)}/messages/${enc(props.topic)}`}>
            Browse messages
          </a>
          <button class="danger" onClick={() => setConfirming(true)} data-testid="delete-topic">
            Delete topic
          </button>
        </div>
      }
    >
      <ProblemBox error={topic.error} />
      {confirming && <Confirm what="topic" name={props.topic} onConfirm={remove} onCancel={() => setConfirming(false)} />}
      {topic.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Partition</th>
                <th scope="col">Leader</th>
                <th scope="col">Epoch</th>
                <th scope="col">High watermark</th>
              </tr>
            </thead>
            <tbody>
              {topic.data.partitions.map((p) => (
                <tr key={p.partition}>
                  <td>{p.partition}</td>
                  <td>{p.leader ?? "unassigned"}</td>
                  <td>{p.leader_epoch}</td>
                  <td>{p.high_watermark}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <form class="card" onSubmit={save}>
            <h2>Configs</h2>
            <label>
              <span>
                One <code>key=value</code> a line; a config left out returns to its default
              </span>
              <textarea rows={6} value={text} onInput={(e) => setConfigs((e.target as HTMLTextAreaElement).value)} />
            </label>
            <ProblemBox error={error} />
            {saved && <p role="status">Saved.</p>}
            <button type="submit">Save configs</button>
          </form>
        </>
      )}
    </Page>
  );
}

function show(v: string | null, encoding: string) {
  if (v === null) return <span class="muted">null</span>;
  return encoding === "base64" ? (
    <span>
      <span class="tag">base64</span> <code>{v}</code>
    </span>
  ) : (
    <code>{v}</code>
  );
}

export function Messages(props: { cred: Credential; cluster: string; topic: string }) {
  const topics = useLoad<List<Topic>>(props.cred, `/v1/clusters/${enc(props.cluster)}/topics?limit=1000`);
  const [topic, setTopic] = useState(props.topic);
  const [partition, setPartition] = useState("0");
  const [mode, setMode] = useState<"offset" | "timestamp">("offset");
  const [offset, setOffset] = useState("0");
  const [timestamp, setTimestamp] = useState("");
  const [follow, setFollow] = useState(false);
  const [records, setRecords] = useState<KafkaRecord[]>([]);
  const [bounds, setBounds] = useState<{ next: number; start: number; hwm: number } | null>(null);
  const [error, setError] = useState<ProblemError | null>(null);
  const next = useRef<number | null>(null);

  const base = `/v1/clusters/${enc(props.cluster)}/topics/${enc(topic)}`;

  // live says whether the answer is still wanted: a follow loop that was
  // stopped (or restarted for another partition) drops what its last
  // request brings back instead of appending it.
  async function load(from: "form" | "next", live: () => boolean = () => true) {
    setError(null);
    let q = "limit=100";
    if (from === "next" && next.current !== null) q += `&offset=${next.current}`;
    else if (mode === "offset") q += `&offset=${Number(offset) || 0}`;
    else if (timestamp) q += `&timestamp=${enc(new Date(timestamp).toISOString())}`;
    try {
      const r = await call<Records>(props.cred, "GET", `${base}/partitions/${Number(partition) || 0}/records?${q}`);
      if (!live()) return;
      setRecords((old) => {
        if (from !== "next") return r.records;
        // Never the same offset twice, whatever answered in between.
        const last = old.length ? old[old.length - 1].offset : -1;
        return [...old, ...r.records.filter((x) => x.offset > last)].slice(-500);
      });
      next.current = r.next_offset;
      setBounds({ next: r.next_offset, start: r.log_start_offset, hwm: r.high_watermark });
    } catch (err) {
      if (!live()) return;
      setError(toProblem(err));
      setFollow(false);
    }
  }

  // Follow mode polls once a second, but the next poll is scheduled only
  // when the previous one has answered: a browse can take up to the API's
  // timeout, and overlapping requests would append the same rows twice.
  useEffect(() => {
    if (!follow) return;
    let stopped = false;
    let t: ReturnType<typeof setTimeout> | undefined;
    const live = () => !stopped;
    const poll = async () => {
      await load("next", live);
      if (!stopped) t = setTimeout(poll, 1000);
    };
    t = setTimeout(poll, 1000);
    return () => {
      stopped = true;
      clearTimeout(t);
    };
  }, [follow, topic, partition]);

  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [headers, setHeaders] = useState("");
  const [produced, setProduced] = useState<string | null>(null);
  const [produceError, setProduceError] = useState<ProblemError | null>(null);

  async function produce(e: Event) {
    e.preventDefault();
    setProduceError(null);
    setProduced(null);
    const hs = headers
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => {
        const i = l.indexOf("=");
        return i < 0 ? { key: l, value: "" } : { key: l.slice(0, i), value: l.slice(i + 1) };
      });
    try {
      const r = await call<{ records: { partition: number; offset: number }[] }>(props.cred, "POST", `${base}/records`, {
        records: [{ partition: Number(partition) || 0, key: key === "" ? null : key, value, headers: hs }],
      });
      setProduced(`Produced to partition ${r.records[0].partition} at offset ${r.records[0].offset}.`);
      if (!follow) load(next.current === null ? "form" : "next");
    } catch (err) {
      setProduceError(toProblem(err));
    }
  }

  return (
    <Page title="Message browser">
      <form
        class="card toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          next.current = null;
          load("form");
        }}
      >
        <label>
          Topic
          {topics.data ? (
            <select value={topic} onChange={(e) => setTopic((e.target as HTMLSelectElement).value)} data-testid="browse-topic">
              <option value="">choose…</option>
              {topics.data.items.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                </option>
              ))}
            </select>
          ) : (
            <input value={topic} onInput={(e) => setTopic((e.target as HTMLInputElement).value)} data-testid="browse-topic" />
          )}
        </label>
        <label>
          Partition
          <input type="number" min={0} value={partition} onInput={(e) => setPartition((e.target as HTMLInputElement).value)} />
        </label>
        <fieldset>
          <legend>From</legend>
          <label class="inline">
            <input type="radio" name="mode" checked={mode === "offset"} onChange={() => setMode("offset")} /> offset
          </label>
          <label class="inline">
            <input type="radio" name="mode" checked={mode === "timestamp"} onChange={() => setMode("timestamp")} /> time
          </label>
        </fieldset>
        {mode === "offset" ? (
          <label>
            Offset
            <input type="number" min={0} value={offset} onInput={(e) => setOffset((e.target as HTMLInputElement).value)} />
          </label>
        ) : (
          <label>
            Time
            <input type="datetime-local" value={timestamp} onInput={(e) => setTimestamp((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <button type="submit" disabled={!topic} data-testid="browse-load">
          Load
        </button>
        <label class="inline">
          <input type="checkbox" checked={follow} disabled={!topic} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> Follow new records
        </label>
      </form>
      <ProblemBox error={error} />
      {bounds && (
        <p class="muted" role="status">
          Partition offsets {bounds.start}–{bounds.hwm}; next offset {bounds.next}.
        </p>
      )}
      <table data-testid="records">
        <thead>
          <tr>
            <th scope="col">Offset</th>
            <th scope="col">Time</th>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Headers</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.offset}>
              <td>{r.offset}</td>
              <td>{fmtTime(r.timestamp)}</td>
              <td>{show(r.key, r.key_encoding)}</td>
              <td>{show(r.value, r.value_encoding)}</td>
              <td>
                {r.headers.map((h) => (
                  <div key={h.key}>
                    {h.key}: {show(h.value, h.encoding || "text")}
                  </div>
                ))}
              </td>
            </tr>
          ))}
          {records.length === 0 && (
            <tr>
              <td colSpan={5}>No records loaded.</td>
            </tr>
          )}
        </tbody>
      </table>
      <form class="card" onSubmit={produce} aria-labelledby="produce-title">
        <h2 id="produce-title">Produce a test record</h2>
        <p class="muted">To the topic and partition above, with your credential's Kafka permissions.</p>
        <label>
          Key
          <input value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} data-testid="produce-key" />
        </label>
        <label>
          Value
          <textarea rows={2} value={value} onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)} data-testid="produce-value" />
        </label>
        <label>
          <span>
            Headers (one <code>key=value</code> a line)
          </span>
          <textarea rows={2} value={headers} onInput={(e) => setHeaders((e.target as HTMLTextAreaElement).value)} />
        </label>
        <ProblemBox error={produceError} />
        {produced && <p role="status">{produced}</p>}
        <button type="submit" disabled={!topic} data-testid="produce">
          Produce
        </button>
      </form>
    </Page>
  );
}

export function Groups(props: { cred: Credential; cluster: string }) {
  const groups = useLoad<List<ConsumerGroup>>(props.cred, `/v1/clusters/${enc(props.cluster)}/consumer-groups?limit=1000`);
  useEffect(() => {
    const t = setInterval(groups.reload, 3000);
    return () => clearInterval(t);
  }, []);
  return (
    <Page title="Consumer groups">
      <ProblemBox error={groups.error} />
      {groups.data && (
        <table data-testid="groups">
          <thead>
            <tr>
              <th scope="col">Group</th>
              <th scope="col">Partitions</th>
              <th scope="col">Total lag</th>
              <th scope="col">Last commit</th>
            </tr>
          </thead>
          <tbody>
            {groups.data.items.map((g) => (
              <tr key={g.group_id}>
                <td>
                  <a href={`#/clusters/${enc(props.cluster)}/groups/${enc(g.group_id)}`}>{g.group_id}</a>
                </td>
                <td>{g.partitions}</td>
                <td>{g.total_lag}</td>
                <td>{fmtTime(g.last_commit_at)}</td>
              </tr>
            ))}
            {groups.data.items.length === 0 && (
              <tr>
                <td colSpan={4}>No consumer group has committed offsets.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </Page>
  );
}

// GroupDetail polls the group and charts its lag per partition over the
// time the page has been open.
export function GroupDetail(props: { cred: Credential; cluster: string; group: string }) {
  const [detail, setDetail] = useState<ConsumerGroupDetail | null>(null);
  const [error, setError] = useState<ProblemError | null>(null);
  const [history, setHistory] = useState<{ x: number[]; lags: Record<string, (number | null)[]> }>({ x: [], lags: {} });

  useEffect(() => {
    let live = true;
    async function poll() {
      try {
        const d = await call<ConsumerGroupDetail>(props.cred, "GET", `/v1/clusters/${enc(props.cluster)}/consumer-groups/${enc(props.group)}`);
        if (!live) return;
        setDetail(d);
        setError(null);
        setHistory((h) => {
          const x = [...h.x, Date.now() / 1000].slice(-120);
          const lags: Record<string, (number | null)[]> = {};
          const names = new Set([...Object.keys(h.lags), ...d.offsets.map((o) => `${o.topic}/${o.partition}`)]);
          for (const name of names) {
            const o = d.offsets.find((o) => `${o.topic}/${o.partition}` === name);
            const old = h.lags[name] ?? h.x.map(() => null);
            lags[name] = [...old, o ? o.lag : null].slice(-120);
          }
          return { x, lags };
        });
      } catch (err) {
        if (live) setError(toProblem(err));
      }
    }
    poll();
    const t = setInterval(poll, 2000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [props.group]);

  const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  const series = Object.entries(history.lags).map(([name, values], i) => ({ label: name, color: palette[i % palette.length], values }));
  return (
    <Page title={`Consumer group ${props.group}`}>
      <ProblemBox error={error} />
      {detail && (
        <>
          <p role="status" data-testid="total-lag" data-lag={detail.total_lag}>
            Total lag: <strong>{detail.total_lag}</strong>
          </p>
          {history.x.length > 0 && <Chart title="Lag per partition while this page is open" x={history.x} series={series} unit="records" testid="lag-chart" />}
          <LagHistoryChart cred={props.cred} cluster={props.cluster} group={props.group} />
          <table data-testid="group-offsets">
            <thead>
              <tr>
                <th scope="col">Topic</th>
                <th scope="col">Partition</th>
                <th scope="col">Committed</th>
                <th scope="col">High watermark</th>
                <th scope="col">Lag</th>
              </tr>
            </thead>
            <tbody>
              {detail.offsets.map((o) => (
                <tr key={`${o.topic}/${o.partition}`}>
                  <td>{o.topic}</td>
                  <td>{o.partition}</td>
                  <td>{o.committed_offset}</td>
                  <td>{o.high_watermark}</td>
                  <td>{o.lag}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Page>
  );
}
