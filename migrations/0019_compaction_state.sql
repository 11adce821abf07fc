-- Key compaction's progress per partition (issue 20), as Kafka's log
-- cleaner keeps in its cleaner-offset-checkpoint file.
--
-- clean_offset is the first dirty offset: the log below it was compacted
-- by a pass that knew every key up to it, so it holds each key at most
-- once; a pass maps the keys at and above it only. Rows below the log
-- start are gone, so the clean part is [log start, clean_offset).
--
-- delete_horizon is the earliest delete horizon (Unix ms, KIP-534) of the
-- batches the last pass kept with one: from then on a pass can remove a
-- tombstone, so the partition is due even with nothing dirty; -1 if none.
--
-- marker_timestamp is the earliest timestamp (Unix ms) of the transaction
-- markers the last pass kept only for their age (no data of their
-- transaction left before them): once it is older than the topic's
-- delete.retention.ms a pass can remove them; -1 if none.
CREATE TABLE compaction_state (
    partition_id     bigint PRIMARY KEY REFERENCES partitions (id) ON DELETE CASCADE,
    clean_offset     bigint NOT NULL CHECK (clean_offset >= 0),
    delete_horizon   bigint NOT NULL DEFAULT -1,
    marker_timestamp bigint NOT NULL DEFAULT -1
);
