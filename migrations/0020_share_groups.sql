-- Share groups (KIP-932, issue 26). One row per share-partition: one share
-- group's delivery state of one partition. start_offset is the
-- share-partition start offset (SPSO): every record below it is done.
-- state is the broker's encoding (data-plane/share Partition.Marshal): the
-- SPSO and the in-flight records above it that were delivered or finished,
-- with their state and delivery count. Only the partition's leader writes
-- it, and only at its leader epoch (the write share-locks the partition's
-- row and checks leader_id and leader_epoch, as the flush commit does), so
-- a deposed leader's write fails instead of overwriting its successor's.
-- The row goes with the partition (its topic deleted) or the cluster.
--
-- state_epoch grows by one whenever an operator resets or deletes the
-- state (the share-group offset APIs); a leader's write names the
-- state_epoch it loaded and fails on another one, so a leader holding the
-- old state in memory cannot write it back. A reset state is a
-- start_offset without state (nothing in flight); a deleted one is a row
-- without either (a tombstone), so its state_epoch survives.

CREATE TABLE share_partitions (
    cluster_id   text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    group_id     text NOT NULL,
    partition_id bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    state_epoch  integer NOT NULL DEFAULT 0,
    start_offset bigint CHECK (start_offset >= 0),
    state        bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, group_id, partition_id),
    CHECK (state IS NULL OR start_offset IS NOT NULL)
);
CREATE INDEX share_partitions_partition_idx ON share_partitions (partition_id);
