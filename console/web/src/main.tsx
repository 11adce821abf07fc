import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Access, AuditLog, ServiceAccounts } from "./access";
import { Credential, loadCredential, saveCredential } from "./api";
import { GroupDetail, Groups, Messages, TopicDetail, Topics } from "./cluster";
import { Autoscaler, Plans, Pool } from "./operator";
import { APIKeys, Clusters, Organizations, SignIn, UsagePage } from "./org";
import { Quotas } from "./quotas";
import "./style.css";

// The console is one page routed by the URL's hash (#/clusters/...), so
// the control plane serves the same index.html for every path.

function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parts;
}

function route(cred: Credential, parts: string[]) {
  const [a, b, c, d] = parts;
  // The operator's pages. A tenant that types their URL gets them too:
  // their calls answer 403, which the page shows as a refusal.
  switch (a) {
    case "pool":
      return <Pool cred={cred} />;
    case "autoscaler":
      return <Autoscaler cred={cred} />;
    case "plans":
      return <Plans cred={cred} />;
  }
  if (cred.kind === "operator") return <Organizations cred={cred} />;
  switch (a) {
    case "clusters":
      if (!b) return <Clusters cred={cred} />;
      switch (c) {
        case "topics":
          return d ? <TopicDetail cred={cred} cluster={b} topic={d} /> : <Topics cred={cred} cluster={b} />;
        case "messages":
          return <Messages key={d} cred={cred} cluster={b} topic={d ?? ""} />;
        case "groups":
          return d ? <GroupDetail cred={cred} cluster={b} group={d} /> : <Groups cred={cred} cluster={b} />;
        case "access":
          return <Access cred={cred} cluster={b} />;
        case "quotas":
          return <Quotas cred={cred} cluster={b} />;
      }
      return <Topics cred={cred} cluster={b} />;
    case "api-keys":
      return <APIKeys cred={cred} />;
    case "service-accounts":
      return <ServiceAccounts cred={cred} />;
    case "audit":
      return <AuditLog cred={cred} />;
    case "usage":
      return <UsagePage cred={cred} />;
  }
  return <Clusters cred={cred} />;
}

function App() {
  const [cred, setCred] = useState<Credential | null>(loadCredential);
  const parts = useHash();
  if (!cred) {
    return (
      <SignIn
        onSignIn={(c) => {
          saveCredential(c);
          setCred(c);
        }}
      />
    );
  }
  const cluster = parts[0] === "clusters" ? parts[1] : undefined;
  const current = (p: string) => (location.hash.startsWith(p) ? "page" : undefined);
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <nav aria-label="Main">
        <strong class="brand">Eddy</strong>
        {cred.kind === "key" ? (
          <>
            <a href="#/clusters" aria-current={current("#/clusters") && !cluster ? "page" : undefined}>
              Clusters
            </a>
            {cluster && (
              <>
                <a href={`#/clusters/${encodeURIComponent(cluster)}/topics`} aria-current={current(`#/clusters/${cluster}/topics`)}>
                  Topics
                </a>
                <a href={`#/clusters/${encodeURIComponent(cluster)}/messages`} aria-current={current(`#/clusters/${cluster}/messages`)}>
                  Messages
                </a>
                <a href={`#/clusters/${encodeURIComponent(cluster)}/groups`} aria-current={current(`#/clusters/${cluster}/groups`)}>
                  Consumer groups
                </a>
                <a href={`#/clusters/${encodeURIComponent(cluster)}/access`} aria-current={current(`#/clusters/${cluster}/access`)}>
                  Access
                </a>
                <a href={`#/clusters/${encodeURIComponent(cluster)}/quotas`} aria-current={current(`#/clusters/${cluster}/quotas`)}>
                  Quotas
                </a>
              </>
            )}
            <a href="#/service-accounts" aria-current={current("#/service-accounts")}>
              Service accounts
            </a>
            <a href="#/api-keys" aria-current={current("#/api-keys")}>
              API keys
            </a>
            <a href="#/usage" aria-current={current("#/usage")}>
              Usage
            </a>
            <a href="#/audit" aria-current={current("#/audit")}>
              Audit log
            </a>
          </>
        ) : (
          <>
            <a href="#/organizations" aria-current={current("#/organizations")}>
              Organisations
            </a>
            <a href="#/pool" aria-current={current("#/pool")}>
              Broker pool
            </a>
            <a href="#/autoscaler" aria-current={current("#/autoscaler")}>
              Autoscaler
            </a>
            <a href="#/plans" aria-current={current("#/plans")}>
              Plans
            </a>
          </>
        )}
        <span class="spacer" />
        <span class="muted">{cred.kind === "key" ? cred.id : "operator"}</span>
        <button
          onClick={() => {
            saveCredential(null);
            setCred(null);
          }}
        >
          Sign out
        </button>
      </nav>
      <main id="main">{route(cred, parts)}</main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
