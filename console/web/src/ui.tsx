import { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { call, Credential, ProblemError } from "./api";

// Shared pieces of the pages: loading a resource with its problem shown,
// the problem box, and a confirmation step for destructive actions.

export interface Loaded<T> {
  data: T | null;
  error: ProblemError | null;
  loading: boolean;
  reload: () => void;
}

export function useLoad<T>(cred: Credential, path: string | null, deps: unknown[] = []): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ProblemError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: !!path,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    call<T>(cred, "GET", path).then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error: toProblem(error), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, tick, ...deps]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

// useEvery reloads a page's data periodically while it is shown.
export function useEvery(reload: () => void, ms: number) {
  useEffect(() => {
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, [reload, ms]);
}

export function toProblem(e: unknown): ProblemError {
  return e instanceof ProblemError ? e : new ProblemError({ type: "about:blank", title: "Error", status: 0, detail: String(e) });
}

// ProblemBox shows a problem+json error. A 403 is a refusal: it says so
// plainly, with the server's reason.
export function ProblemBox(props: { error: ProblemError | null }) {
  const e = props.error;
  if (!e) return null;
  const p = e.problem;
  if (p.status === 403) {
    return (
      <div class="problem refused" role="alert" data-testid="refused">
        <strong>Refused: your credential does not allow this.</strong>
        <p>{p.detail || p.title}</p>
      </div>
    );
  }
  return (
    <div class="problem" role="alert" data-testid="problem">
      <strong>{p.title}</strong>
      {p.detail && <p>{p.detail}</p>}
      {p.errors && (
        <ul>
          {p.errors.map((fe) => (
            <li key={fe.field}>
              <code>{fe.field}</code>: {fe.message}
            </li>
          ))}
        </ul>
      )}
      {p.request_id && <p class="muted">request id {p.request_id}</p>}
    </div>
  );
}

export function Page(props: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · Eddy console`;
  }, [props.title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-header">
        <h1 id="page-title">{props.title}</h1>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}

// Confirm asks for the resource's name before a destructive action.
export function Confirm(props: { what: string; name: string; onConfirm: () => void; onCancel: () => void }) {
  const [typed, setTyped] = useState("");
  return (
    <div class="confirm" role="dialog" aria-modal="true" aria-labelledby="confirm-title">
      <h2 id="confirm-title">Delete {props.what}?</h2>
      <p>
        This cannot be undone. Type <code>{props.name}</code> to confirm.
      </p>
      <label>
        Name
        <input value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} autoFocus data-testid="confirm-name" />
      </label>
      <div class="row">
        <button class="danger" disabled={typed !== props.name} onClick={props.onConfirm} data-testid="confirm-delete">
          Delete
        </button>
        <button onClick={props.onCancel}>Cancel</button>
      </div>
    </div>
  );
}

export function fmtTime(s: string) {
  return new Date(s).toLocaleString();
}
