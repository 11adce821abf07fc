-- A virtual cluster's limits have their defaults in one place, Go's
-- internal/limits.Defaults(): every insert names them (store.CreateCluster,
-- store.EnsureCluster), so the columns lose the DEFAULTs of 0002 and 0006,
-- which would otherwise be a second copy to keep equal.
ALTER TABLE virtual_clusters
    ALTER COLUMN ingress_mbps         DROP DEFAULT,
    ALTER COLUMN egress_mbps          DROP DEFAULT,
    ALTER COLUMN max_requests_per_sec DROP DEFAULT,
    ALTER COLUMN max_connections      DROP DEFAULT,
    ALTER COLUMN max_partitions       DROP DEFAULT,
    ALTER COLUMN max_storage_gb       DROP DEFAULT;

---- create above / drop below ----

ALTER TABLE virtual_clusters
    ALTER COLUMN ingress_mbps         SET DEFAULT 100,
    ALTER COLUMN egress_mbps          SET DEFAULT 300,
    ALTER COLUMN max_requests_per_sec SET DEFAULT 10000,
    ALTER COLUMN max_connections      SET DEFAULT 1000,
    ALTER COLUMN max_partitions       SET DEFAULT 1000,
    ALTER COLUMN max_storage_gb       SET DEFAULT 1024;
