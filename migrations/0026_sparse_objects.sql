-- Objects that index rows reference for less than three quarters of
-- their size (issue 22). Compaction leaves large pieces of a flush object
-- where they are; when the rest of the object was rewritten elsewhere (its
-- small pieces) or dropped by retention, the bucket would keep those bytes
-- for the sake of the large pieces until their own retention. An object is
-- flagged sparse when rows leave it and what stays is under three quarters
-- of its size; compaction then rewrites its remaining rows whatever their
-- size, and garbage collection deletes it once no row references it.
ALTER TABLE objects ADD COLUMN sparse boolean NOT NULL DEFAULT false;
CREATE INDEX objects_sparse_idx ON objects (key) WHERE sparse;
