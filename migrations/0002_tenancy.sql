-- Tenancy: organisations own virtual clusters, service accounts and API
-- keys; role bindings grant service accounts a role on a cluster. The
-- control plane's JWT signing keys and the replay records of POSTs sent
-- with an Idempotency-Key live here too.
--
-- Virtual clusters created before this migration (the brokers'
-- --anonymous-cluster, vc-dev) have no organisation: REST never shows them.

CREATE TABLE organizations (
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE virtual_clusters
    ADD COLUMN org_id                text REFERENCES organizations (id) ON DELETE CASCADE,
    ADD COLUMN status                text NOT NULL DEFAULT 'ready'
        CHECK (status IN ('provisioning', 'ready')),
    ADD COLUMN ingress_mbps          integer NOT NULL DEFAULT 100 CHECK (ingress_mbps > 0),
    ADD COLUMN egress_mbps           integer NOT NULL DEFAULT 300 CHECK (egress_mbps > 0),
    ADD COLUMN max_partitions        integer NOT NULL DEFAULT 1000 CHECK (max_partitions > 0),
    ADD COLUMN max_storage_gb        bigint NOT NULL DEFAULT 1024 CHECK (max_storage_gb > 0),
    ADD COLUMN default_topic_configs jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN version               bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at            timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX virtual_clusters_org_name_idx ON virtual_clusters (org_id, name) WHERE org_id IS NOT NULL;
CREATE INDEX virtual_clusters_provisioning_idx ON virtual_clusters (created_at) WHERE status = 'provisioning';

-- org_admin service accounts may manage everything in their organisation
-- over REST; the one created with the organisation is such an account.
CREATE TABLE service_accounts (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    org_admin   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- secret_hash is SHA-256 of the secret: secrets are 256 random bits, so a
-- slow hash adds nothing. cluster_id NULL means the key is valid for the
-- whole organisation.
CREATE TABLE api_keys (
    id                 text PRIMARY KEY,
    org_id             text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    service_account_id text NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    cluster_id         text REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    secret_hash        bytea NOT NULL,
    description        text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id, id);

CREATE TABLE role_bindings (
    id                 text PRIMARY KEY,
    org_id             text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    cluster_id         text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    service_account_id text NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    role               text NOT NULL CHECK (role IN ('admin', 'developer-read', 'developer-write')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster_id, service_account_id, role)
);

-- JWT signing keys. private_key is PKCS#8 DER, stored in plain for now.
-- A key signs from created_at until retired_at and is published in the
-- JWKS until published_until, which rotation sets past the lifetime of the
-- last token it signed.
CREATE TABLE signing_keys (
    kid             text PRIMARY KEY,
    alg             text NOT NULL,
    private_key     bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    published_until timestamptz
);

-- A POST sent with an Idempotency-Key records its response here; a repeat
-- within the retention period replays it. status 0 marks a request still
-- in flight.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer NOT NULL DEFAULT 0,
    headers      jsonb NOT NULL DEFAULT '{}',
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

---- create above / drop below ----

DROP TABLE idempotency_keys, signing_keys, role_bindings, api_keys, service_accounts;
DROP INDEX virtual_clusters_provisioning_idx, virtual_clusters_org_name_idx;
ALTER TABLE virtual_clusters
    DROP COLUMN org_id, DROP COLUMN status, DROP COLUMN ingress_mbps,
    DROP COLUMN egress_mbps, DROP COLUMN max_partitions, DROP COLUMN max_storage_gb,
    DROP COLUMN default_topic_configs, DROP COLUMN version, DROP COLUMN updated_at;
DROP TABLE organizations;
