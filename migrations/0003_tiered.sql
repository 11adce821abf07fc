-- Tiered storage: background jobs claimed by any number of workers, and the
-- garbage collector's mark on objects no index row references.

-- A job is a recurring piece of background work (retention, compaction,
-- garbage collection) named by (kind, key). A worker claims a due job with
-- FOR UPDATE SKIP LOCKED and takes a lease: lease_owner and lease_until. A
-- worker that dies leaves a lease that expires, and the job is claimed
-- again. Finishing (or failing) a job checks the lease is still the
-- worker's, then schedules the next run at run_at.
CREATE TABLE jobs (
    kind        text NOT NULL,
    key         text NOT NULL,
    run_at      timestamptz NOT NULL DEFAULT now(),
    every       interval NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    last_done   timestamptz,
    PRIMARY KEY (kind, key)
);
CREATE INDEX jobs_due_idx ON jobs (run_at);

-- unreferenced_at is set by garbage collection when it first sees no index
-- row referencing the object; the object is deleted once that mark is older
-- than the reader grace period and a re-check in the deleting transaction
-- still finds no reference.
ALTER TABLE objects ADD COLUMN unreferenced_at timestamptz;
CREATE INDEX objects_unreferenced_idx ON objects (unreferenced_at) WHERE unreferenced_at IS NOT NULL;

---- create above / drop below ----

DROP INDEX objects_unreferenced_idx;
ALTER TABLE objects DROP COLUMN unreferenced_at;
DROP TABLE jobs;
