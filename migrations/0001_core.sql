-- Core metadata for the data plane: virtual clusters, broker sessions,
-- topics, partitions (leadership + high watermark), the index of where every
-- committed byte lives, idempotent-producer state and consumer-group offsets.

CREATE TABLE virtual_clusters (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    auto_create_topics boolean NOT NULL DEFAULT true,
    default_partitions integer NOT NULL DEFAULT 1 CHECK (default_partitions > 0),
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- One row per broker id. session_epoch grows on every registration, so a
-- broker that restarts is told apart from its former self; a session whose
-- expires_at has passed is dead and loses its partitions.
CREATE TABLE brokers (
    id            integer PRIMARY KEY,
    host          text NOT NULL,
    port          integer NOT NULL,
    rack          text,
    session_epoch bigint NOT NULL DEFAULT 1,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    draining      boolean NOT NULL DEFAULT false,
    load          jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE topics (
    id         uuid PRIMARY KEY,
    cluster_id text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    name       text NOT NULL,
    configs    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster_id, name)
);

-- leader_id is NULL while a partition waits for placement. Every assignment
-- bumps leader_epoch; high_watermark only moves in a statement that checks the
-- writer's leader_epoch (DESIGN.md invariant 1).
CREATE TABLE partitions (
    id               bigserial PRIMARY KEY,
    topic_id         uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        integer NOT NULL CHECK (partition >= 0),
    leader_id        integer REFERENCES brokers (id) ON DELETE SET NULL,
    leader_epoch     integer NOT NULL DEFAULT 0,
    high_watermark   bigint NOT NULL DEFAULT 0,
    log_start_offset bigint NOT NULL DEFAULT 0,
    UNIQUE (topic_id, partition)
);
CREATE INDEX partitions_leader_idx ON partitions (leader_id);

-- The index: offsets [base_offset, end_offset) of a partition are the raw
-- record batches at bytes [position, position+length) of object_key.
CREATE TABLE segments (
    partition_id  bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    base_offset   bigint NOT NULL,
    end_offset    bigint NOT NULL CHECK (end_offset > base_offset),
    object_key    text NOT NULL,
    position      bigint NOT NULL,
    length        integer NOT NULL,
    max_timestamp bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_id, base_offset)
);
CREATE INDEX segments_object_idx ON segments (object_key);

-- Every object a flusher wrote. Garbage collection (tiered storage) deletes
-- objects no segment row references once they are older than a grace period.
CREATE TABLE objects (
    key        text PRIMARY KEY,
    size       bigint NOT NULL,
    broker_id  integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE producer_ids START 1000;

-- Idempotent-producer state, committed with the data it describes so a new
-- leader keeps deduplicating. batches holds the last (up to five) batches as
-- [[first_seq, last_seq, base_offset], ...].
CREATE TABLE producer_states (
    partition_id   bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    producer_id    bigint NOT NULL,
    producer_epoch smallint NOT NULL,
    batches        jsonb NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_id, producer_id)
);

-- Group coordinators are spread over a fixed number of slots; each slot is
-- led by one broker at a time, exactly like a partition.
CREATE TABLE coordinator_slots (
    slot         integer PRIMARY KEY,
    leader_id    integer REFERENCES brokers (id) ON DELETE SET NULL,
    leader_epoch integer NOT NULL DEFAULT 0
);
INSERT INTO coordinator_slots (slot) SELECT generate_series(0, 63);

CREATE TABLE group_offsets (
    cluster_id   text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    committed    bigint NOT NULL,
    leader_epoch integer NOT NULL DEFAULT -1,
    metadata     text NOT NULL DEFAULT '',
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, group_id, topic, partition)
);

---- create above / drop below ----

DROP TABLE group_offsets, coordinator_slots, producer_states, objects, segments,
    partitions, topics, brokers, virtual_clusters;
DROP SEQUENCE producer_ids;
