-- Consumer-group lag history (issue 25): the control plane
-- (control-plane/laghistory) samples every group's lag from its committed
-- offsets and the partitions' high watermarks once per
-- --lag-sample-interval, one row per group and sample, with the lag of
-- each partition as parallel arrays ordered by topic and partition.
-- Rows older than --lag-retention are deleted in batches; at most
-- --lag-max-groups-per-cluster groups of a cluster are sampled, so a
-- cluster holds a bounded number of rows. Deleting a cluster deletes its
-- history.
CREATE TABLE group_lag_samples (
    cluster_id text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    group_id   text NOT NULL,
    sampled_at timestamptz NOT NULL,
    total_lag  bigint NOT NULL CHECK (total_lag >= 0),
    topics     text[] NOT NULL,
    partitions integer[] NOT NULL,
    lags       bigint[] NOT NULL,
    PRIMARY KEY (cluster_id, group_id, sampled_at)
);
-- Retention deletes by age.
CREATE INDEX group_lag_samples_at_idx ON group_lag_samples (sampled_at);
