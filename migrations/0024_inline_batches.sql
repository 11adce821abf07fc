-- Inline storage of small flushes (issue 22). A flush whose batches are
-- small is committed here, in the same fenced statement that moves the
-- high watermark, instead of being PUT as an object of its own: acks=all
-- then waits for one Postgres commit and no PUT. The leader's uploader
-- later writes the rows of many flushes and partitions as ONE object and,
-- in one transaction, inserts the index rows (segments) for it and deletes
-- the inline rows it covered. A partition's committed offsets below its
-- high watermark are thus each in exactly one place: an index row or an
-- inline row.
--
-- data holds whole record batches, back to back, for [base_offset,
-- end_offset). It is stored uncompressed (STORAGE EXTERNAL): batches are
-- usually compressed by the producer already, and pglz would spend the
-- commit's CPU finding that out.
CREATE TABLE inline_batches (
    partition_id  bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    base_offset   bigint NOT NULL,
    end_offset    bigint NOT NULL CHECK (end_offset > base_offset),
    max_timestamp bigint NOT NULL,
    data          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_id, base_offset)
);
ALTER TABLE inline_batches ALTER COLUMN data SET STORAGE EXTERNAL;

