-- Group membership (classic generations and assignments, KIP-848 epochs and
-- assignments), written by the group's coordinator and read by the broker
-- that next gains the group's coordinator slot, so members carry on across
-- a coordinator failure instead of rejoining. state is the coordinator's
-- own encoding (JSON, data-plane/group/persist.go) kept as bytes: member and
-- client ids are arbitrary Kafka strings, and jsonb refuses some (a NUL
-- byte would fail every write of the batch). Read one in psql with
-- convert_from(state, 'UTF8')::json. slot is the coordinator slot the
-- group hashes to, so a broker loads a slot's groups with one index scan.
-- Writes are fenced by coordinator_slots like group_offsets.
CREATE TABLE group_states (
    cluster_id text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    group_id   text NOT NULL,
    slot       integer NOT NULL,
    state      bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, group_id)
);
CREATE INDEX group_states_slot ON group_states (slot);

---- create above / drop below ----

DROP TABLE group_states;
