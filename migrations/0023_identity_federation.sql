-- Identity federation (issue 24): an organisation trusts tokens of its own
-- OIDC identity providers (Okta, Entra ID, Keycloak, a Kubernetes or
-- GitHub Actions issuer). An identity pool admits the tokens of one
-- provider whose claims pass its filter (claim name -> accepted values)
-- and lets them act as one of the organisation's service accounts in one
-- cluster, so role bindings and ACLs apply to them unchanged. Clients name
-- the pool (OAUTHBEARER extension identityPoolId; REST header
-- Eddy-Identity-Pool), so a token never matches pools by accident.

CREATE TABLE identity_providers (
    id         text PRIMARY KEY,
    org_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       text NOT NULL,
    issuer     text NOT NULL,
    jwks_url   text NOT NULL,
    audience   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE identity_pools (
    id                 text PRIMARY KEY,
    org_id             text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider_id        text NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE,
    name               text NOT NULL,
    cluster_id         text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    service_account_id text NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    filter             jsonb NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE INDEX identity_pools_provider_idx ON identity_pools (provider_id);
