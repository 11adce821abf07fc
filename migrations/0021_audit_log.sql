-- The audit log (issue 24): who changed what, when, from where, with what
-- result, and who was refused. One row per control-plane mutation (REST,
-- Terraform through REST, the Kafka admin APIs) and one per aggregated run
-- of authorization denials on the Kafka path (count says how many the row
-- stands for). Append-only: nothing updates a row; rows older than the
-- control plane's --audit-retention are deleted. No foreign keys: a row
-- outlives the organisation, cluster or principal it names. Rows hold
-- names and ids, never request bodies, so never secrets.
--
-- org_id is '' for the operator's own actions outside any organisation
-- (plans).

CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    org_id        text NOT NULL,
    cluster_id    text NOT NULL DEFAULT '',
    principal     text NOT NULL,
    source        text NOT NULL DEFAULT '',
    channel       text NOT NULL CHECK (channel IN ('rest', 'kafka')),
    action        text NOT NULL,
    resource_type text NOT NULL DEFAULT '',
    resource_name text NOT NULL DEFAULT '',
    result        text NOT NULL CHECK (result IN ('ok', 'failed', 'denied')),
    detail        text NOT NULL DEFAULT '',
    count         integer NOT NULL DEFAULT 1 CHECK (count >= 1)
);
-- Listing is per organisation, newest first; retention deletes by age.
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at);
