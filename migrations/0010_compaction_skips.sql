-- Batches key compaction could not read (records that decompress past the
-- topic's limit, or do not decode), kept as they are in the partition's
-- log. Compaction reads this before a pass, so that a decompression bomb
-- stored before produce checked sizes costs one attempt, not one per pass.
-- A row outlives its batch once retention drops it: harmless, and gone
-- with the partition.
CREATE TABLE compaction_skips (
    partition_id bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    base_offset  bigint NOT NULL,
    last_offset  bigint NOT NULL,
    reason       text NOT NULL,
    skipped_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_id, base_offset)
);
