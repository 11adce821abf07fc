-- Bounded producer state. Idempotent-producer rows expire once their
-- producer has not written for producer.id.expiration.ms (the broker's
-- --producer-id-expiration): any broker may delete them, and a new leader
-- loads only the live ones; the index serves both.
CREATE INDEX producer_states_updated_at_idx ON producer_states (updated_at);

-- Producer ids are rationed per cluster by a token bucket: tokens refill
-- at the broker's --producer-id-rate up to --producer-id-burst, and every
-- InitProducerId takes one in the same statement that allocates the id,
-- so the bucket is shared by the whole pool.
CREATE TABLE producer_id_budgets (
    cluster_id text PRIMARY KEY REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL
);

---- create above / drop below ----

DROP TABLE producer_id_budgets;
DROP INDEX producer_states_updated_at_idx;
