-- Metering and billing: what brokers and the control plane measured
-- (usage), what it costs (plans and their price books), and what was
-- charged (daily cost lines, monthly invoices, credits and adjustments),
-- plus budget alerts and their webhook deliveries.
--
-- Usage units are the base units the meters count: bytes, byte-seconds
-- of storage, partition-seconds and cluster-seconds. Prices are per
-- pricing unit (GB = 10^9 bytes, GB-month = GB x 730 hours, hours).
-- Money is integer nano-units of the plan's currency (10^-9); invoice
-- totals are rounded to cents once, at the end.
--
-- Usage and invoices are keyed by cluster and organisation ids without
-- foreign keys: billing history outlives a deleted cluster or organisation.

-- One row per (broker, boot, window, cluster): the idempotency key of a
-- broker's usage report. A retry, or a replay from the broker's spool after
-- a restart (under the boot id that counted it), inserts nothing new.
CREATE TABLE usage_reports (
    broker_id    integer NOT NULL,
    boot_id      text NOT NULL,
    window_start timestamptz NOT NULL,
    cluster_id   text NOT NULL,
    window_end   timestamptz NOT NULL CHECK (window_end >= window_start),
    bytes_in     bigint NOT NULL CHECK (bytes_in >= 0),
    bytes_out    bigint NOT NULL CHECK (bytes_out >= 0),
    requests     bigint NOT NULL CHECK (requests >= 0),
    connections  bigint NOT NULL CHECK (connections >= 0),
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broker_id, boot_id, window_start, cluster_id)
);
CREATE INDEX usage_reports_cluster_idx ON usage_reports (cluster_id, window_start);

-- Storage and metadata sampled by the control plane once per sampling
-- window: the cluster's stored bytes (sum of its segments' lengths) and
-- partition count, each held for window_seconds. One sample per window.
CREATE TABLE storage_samples (
    cluster_id     text NOT NULL,
    window_start   timestamptz NOT NULL,
    window_seconds integer NOT NULL CHECK (window_seconds > 0),
    bytes          bigint NOT NULL CHECK (bytes >= 0),
    partitions     integer NOT NULL CHECK (partitions >= 0),
    sampled_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, window_start)
);

-- Which organisation a cluster bills to, kept after the cluster is
-- deleted so its last usage is still invoiced. Filled by a trigger.
CREATE TABLE billed_clusters (
    cluster_id text PRIMARY KEY,
    org_id     text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billed_clusters_org_idx ON billed_clusters (org_id);
INSERT INTO billed_clusters (cluster_id, org_id, name)
    SELECT id, org_id, name FROM virtual_clusters WHERE org_id IS NOT NULL;
CREATE FUNCTION billed_clusters_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.org_id IS NOT NULL THEN
        INSERT INTO billed_clusters (cluster_id, org_id, name) VALUES (NEW.id, NEW.org_id, NEW.name)
        ON CONFLICT (cluster_id) DO UPDATE SET name = EXCLUDED.name;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER virtual_clusters_billed AFTER INSERT OR UPDATE OF org_id, name ON virtual_clusters
    FOR EACH ROW EXECUTE FUNCTION billed_clusters_track();

-- Every measured quantity as (cluster, window start, metric, base units).
CREATE VIEW usage_windows AS
    SELECT cluster_id, window_start, 'ingress'::text AS metric, bytes_in::numeric AS quantity FROM usage_reports
    UNION ALL SELECT cluster_id, window_start, 'egress', bytes_out::numeric FROM usage_reports
    UNION ALL SELECT cluster_id, window_start, 'requests', requests::numeric FROM usage_reports
    UNION ALL SELECT cluster_id, window_start, 'connections', connections::numeric FROM usage_reports
    UNION ALL SELECT cluster_id, window_start, 'storage', bytes::numeric * window_seconds FROM storage_samples
    UNION ALL SELECT cluster_id, window_start, 'partitions', partitions::numeric * window_seconds FROM storage_samples
    UNION ALL SELECT cluster_id, window_start, 'clusters', window_seconds::numeric FROM storage_samples;

CREATE TABLE billing_plans (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    currency   text NOT NULL DEFAULT 'USD',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The price book: a price applies from effective_from until the next
-- one of the same plan and metric. Usage is rated in 15-minute buckets
-- (every time zone's offset is a multiple of 15 minutes), so a price
-- change must fall on a 15-minute boundary.
CREATE TABLE billing_prices (
    plan_id        text NOT NULL REFERENCES billing_plans (id) ON DELETE CASCADE,
    metric         text NOT NULL CHECK (metric IN ('ingress', 'egress', 'storage', 'partitions', 'clusters')),
    effective_from timestamptz NOT NULL
        CHECK (date_bin('15 minutes', effective_from, 'epoch') = effective_from),
    unit_price     numeric NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (plan_id, metric, effective_from)
);

-- Usage included in the plan every month, in pricing units.
CREATE TABLE billing_included (
    plan_id  text NOT NULL REFERENCES billing_plans (id) ON DELETE CASCADE,
    metric   text NOT NULL CHECK (metric IN ('ingress', 'egress', 'storage', 'partitions', 'clusters')),
    quantity numeric NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (plan_id, metric)
);

INSERT INTO billing_plans (id, name) VALUES ('standard', 'Standard');
INSERT INTO billing_prices (plan_id, metric, effective_from, unit_price) VALUES
    ('standard', 'ingress',    '2020-01-01T00:00:00Z', 0.05),
    ('standard', 'egress',     '2020-01-01T00:00:00Z', 0.05),
    ('standard', 'storage',    '2020-01-01T00:00:00Z', 0.10),
    ('standard', 'partitions', '2020-01-01T00:00:00Z', 0.0015),
    ('standard', 'clusters',   '2020-01-01T00:00:00Z', 0.10);

-- The time zone decides where an organisation's days and months begin.
ALTER TABLE organizations
    ADD COLUMN billing_plan_id   text NOT NULL DEFAULT 'standard' REFERENCES billing_plans (id),
    ADD COLUMN billing_time_zone text NOT NULL DEFAULT 'UTC';

-- An invoice per organisation and month (month = the first day of the
-- month in the invoice's time zone). A draft is re-rated while the month
-- runs; once finalized, the triggers below make the invoice, its lines,
-- the month's cost lines and adjustments immutable.
CREATE TABLE invoices (
    id                text PRIMARY KEY,
    org_id            text NOT NULL,
    month             date NOT NULL CHECK (extract(day FROM month) = 1),
    time_zone         text NOT NULL,
    currency          text NOT NULL,
    plan_id           text NOT NULL,
    status            text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'finalized')),
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    subtotal_nanos    bigint NOT NULL DEFAULT 0,
    credits_nanos     bigint NOT NULL DEFAULT 0 CHECK (credits_nanos >= 0),
    adjustments_nanos bigint NOT NULL DEFAULT 0,
    total_cents       bigint NOT NULL DEFAULT 0,
    rated_at          timestamptz NOT NULL DEFAULT now(),
    finalized_at      timestamptz,
    UNIQUE (org_id, month)
);

CREATE TABLE invoice_lines (
    invoice_id   text NOT NULL REFERENCES invoices (id),
    cluster_id   text NOT NULL,
    metric       text NOT NULL,
    unit_price   numeric NOT NULL,
    quantity     numeric NOT NULL,  -- base units used
    billable     numeric NOT NULL,  -- base units charged (after included usage)
    amount_nanos bigint NOT NULL,
    PRIMARY KEY (invoice_id, cluster_id, metric, unit_price)
);

-- Daily cost lines: day is a calendar day in the organisation's time zone.
CREATE TABLE cost_lines (
    org_id       text NOT NULL,
    day          date NOT NULL,
    cluster_id   text NOT NULL,
    metric       text NOT NULL,
    unit_price   numeric NOT NULL,
    quantity     numeric NOT NULL,
    billable     numeric NOT NULL,
    amount_nanos bigint NOT NULL,
    PRIMARY KEY (org_id, day, cluster_id, metric, unit_price)
);

-- Credits reduce a month's charges (never below zero); adjustments add
-- or remove a signed amount.
CREATE TABLE billing_adjustments (
    id           text PRIMARY KEY,
    org_id       text NOT NULL,
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    kind         text NOT NULL CHECK (kind IN ('credit', 'adjustment')),
    amount_nanos bigint NOT NULL CHECK (kind = 'adjustment' OR amount_nanos > 0),
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_adjustments_org_idx ON billing_adjustments (org_id, month);

-- Finalized invoices are immutable: no update or delete of a finalized
-- invoice, and no change to the lines, cost lines or adjustments of its
-- month. Finalizing itself (draft -> finalized) is the last update allowed.
CREATE FUNCTION billing_refuse_finalized() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'invoices' THEN
        IF OLD.status = 'finalized' THEN
            RAISE EXCEPTION 'invoice % is finalized and cannot change', OLD.id USING ERRCODE = 'check_violation';
        END IF;
    ELSIF TG_TABLE_NAME = 'invoice_lines' THEN
        IF EXISTS (SELECT 1 FROM invoices WHERE id = r.invoice_id AND status = 'finalized') THEN
            RAISE EXCEPTION 'invoice % is finalized and cannot change', r.invoice_id USING ERRCODE = 'check_violation';
        END IF;
    ELSIF TG_TABLE_NAME = 'cost_lines' THEN
        IF EXISTS (SELECT 1 FROM invoices WHERE org_id = r.org_id
                   AND month = date_trunc('month', r.day)::date AND status = 'finalized') THEN
            RAISE EXCEPTION 'the invoice of % for % is finalized', r.org_id, r.day USING ERRCODE = 'check_violation';
        END IF;
    ELSIF TG_TABLE_NAME = 'billing_adjustments' THEN
        IF EXISTS (SELECT 1 FROM invoices WHERE org_id = r.org_id AND month = r.month AND status = 'finalized') THEN
            RAISE EXCEPTION 'the invoice of % for % is finalized', r.org_id, r.month USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_finalized();
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_finalized();
CREATE TRIGGER cost_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON cost_lines
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_finalized();
CREATE TRIGGER billing_adjustments_immutable BEFORE INSERT OR UPDATE OR DELETE ON billing_adjustments
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_finalized();

-- Budget alerts: when an organisation's charges for a month reach
-- threshold_nanos, one event per (alert, month) is queued and POSTed to
-- webhook_url, signed with HMAC-SHA256 under secret, retried with backoff.
CREATE TABLE budget_alerts (
    id              text PRIMARY KEY,
    org_id          text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    threshold_nanos bigint NOT NULL CHECK (threshold_nanos > 0),
    webhook_url     text NOT NULL,
    secret          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX budget_alerts_org_idx ON budget_alerts (org_id, id);

CREATE TABLE budget_alert_events (
    alert_id        text NOT NULL REFERENCES budget_alerts (id) ON DELETE CASCADE,
    month           date NOT NULL,
    org_id          text NOT NULL,
    amount_nanos    bigint NOT NULL,
    fired_at        timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_error      text,
    PRIMARY KEY (alert_id, month)
);
CREATE INDEX budget_alert_events_due_idx ON budget_alert_events (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

---- create above / drop below ----

DROP TABLE budget_alert_events, budget_alerts;
DROP TRIGGER billing_adjustments_immutable ON billing_adjustments;
DROP TRIGGER cost_lines_immutable ON cost_lines;
DROP TRIGGER invoice_lines_immutable ON invoice_lines;
DROP TRIGGER invoices_immutable ON invoices;
DROP FUNCTION billing_refuse_finalized();
DROP TABLE billing_adjustments, cost_lines, invoice_lines, invoices;
ALTER TABLE organizations DROP COLUMN billing_time_zone, DROP COLUMN billing_plan_id;
DROP TABLE billing_included, billing_prices, billing_plans;
DROP VIEW usage_windows;
DROP TRIGGER virtual_clusters_billed ON virtual_clusters;
DROP FUNCTION billed_clusters_track();
DROP TABLE billed_clusters;
DROP TABLE storage_samples, usage_reports;
