-- Autoscaling, graceful partition moves and per-cluster quotas (issue 9).

-- A graceful move: the control plane names the broker a partition should
-- go to; its current leader stops accepting produces for it, flushes and
-- commits what it holds, then hands leadership over itself (leader_id :=
-- moving_to, leader_epoch + 1) in one fenced statement. move_started_at
-- lets the control plane force the move (plain reassignment, which fences
-- the old leader) if the old leader does not let go in time.
ALTER TABLE partitions
    ADD COLUMN moving_to       integer REFERENCES brokers (id) ON DELETE SET NULL,
    ADD COLUMN move_started_at timestamptz;
CREATE INDEX partitions_moving_idx ON partitions (moving_to) WHERE moving_to IS NOT NULL;

-- Quotas beyond the byte rates, partitions and storage of 0002: requests
-- per second and open connections, each for the whole cluster across the
-- pool (every broker enforces its share).
ALTER TABLE virtual_clusters
    ADD COLUMN max_requests_per_sec integer NOT NULL DEFAULT 10000 CHECK (max_requests_per_sec > 0),
    ADD COLUMN max_connections      integer NOT NULL DEFAULT 1000 CHECK (max_connections > 0);

-- The autoscaler's memory: one row per evaluation with the pool's load
-- (JSON, control-plane/autoscale.Sample), so the predictive term (trend,
-- daily seasonality) survives control-plane restarts. Rows older than the
-- history the autoscaler needs (8 days) are deleted as it writes.
CREATE TABLE load_samples (
    at      timestamptz PRIMARY KEY,
    sample  jsonb NOT NULL
);

---- create above / drop below ----

DROP TABLE load_samples;
ALTER TABLE virtual_clusters DROP COLUMN max_requests_per_sec, DROP COLUMN max_connections;
ALTER TABLE partitions DROP COLUMN moving_to, DROP COLUMN move_started_at;
