-- Transactions (KIP-98, KIP-447, KIP-890). Postgres holds every piece of
-- transaction state, so whichever broker gains a coordinator slot or a
-- partition carries on where the last one stopped; docs/transactions.md
-- tells the whole story. Nothing here is cached authoritatively in a
-- broker's memory: each transition is one Postgres transaction that locks
-- the transactions row.

-- One row per transactional id of a virtual cluster. slot is the
-- coordinator slot the id hashes to (as a group id does), so the slot's
-- leader finds the transactions whose timeout it must enforce. state is
-- Kafka's: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
-- CompleteAbort (the Prepare* states last until every marker row of the
-- transaction is gone). prev_producer_id is the id before an epoch
-- overflow gave the transactional id a new one (KIP-360, KIP-890 part 2).
CREATE TABLE transactions (
    cluster_id       text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    transactional_id text NOT NULL,
    slot             integer NOT NULL,
    producer_id      bigint NOT NULL,
    producer_epoch   smallint NOT NULL,
    prev_producer_id bigint NOT NULL DEFAULT -1,
    state            text NOT NULL,
    timeout_ms       integer NOT NULL,
    txn_version      smallint NOT NULL DEFAULT 0,
    started_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, transactional_id)
);
CREATE INDEX transactions_slot ON transactions (slot, state);
CREATE UNIQUE INDEX transactions_producer ON transactions (producer_id);

-- The partitions and consumer groups of each transactional id's current
-- transaction (AddPartitionsToTxn, AddOffsetsToTxn, or implicitly by a
-- transaction-version-2 produce or TxnOffsetCommit). Emptied when the
-- transaction ends and its markers are queued.
CREATE TABLE transaction_partitions (
    cluster_id       text NOT NULL,
    transactional_id text NOT NULL,
    partition_id     bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    PRIMARY KEY (cluster_id, transactional_id, partition_id),
    FOREIGN KEY (cluster_id, transactional_id) REFERENCES transactions ON DELETE CASCADE
);
CREATE INDEX transaction_partitions_partition ON transaction_partitions (partition_id);

CREATE TABLE transaction_groups (
    cluster_id       text NOT NULL,
    transactional_id text NOT NULL,
    group_id         text NOT NULL,
    PRIMARY KEY (cluster_id, transactional_id, group_id),
    FOREIGN KEY (cluster_id, transactional_id) REFERENCES transactions ON DELETE CASCADE
);

-- Offsets committed inside a transaction (TxnOffsetCommit), invisible to
-- OffsetFetch until the transaction commits; a committed transaction's
-- group marker moves them into group_offsets, an aborted one's deletes
-- them. OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for
-- a partition that has one.
CREATE TABLE txn_offsets (
    cluster_id   text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    group_id     text NOT NULL,
    producer_id  bigint NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    committed    bigint NOT NULL,
    leader_epoch integer NOT NULL DEFAULT -1,
    metadata     text NOT NULL DEFAULT '',
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, group_id, topic, partition, producer_id)
);

-- Transaction markers still to be written: one row per partition (a
-- control batch in its log) or group (its pending offsets applied) of a
-- transaction that ended. EndTxn, or the coordinator's abort on timeout or
-- fencing, inserts them in the transaction that moves the state to
-- Prepare*, and NOTIFYs eddy_txn_markers. A partition's row is deleted by
-- the flush commit that makes its control batch durable (fenced by leader
-- epoch like every commit), a group's by the statement that applies its
-- offsets (fenced by the slot's leader epoch); so a marker is written
-- exactly once whoever leads when it is picked up.
CREATE TABLE txn_markers (
    id                bigserial PRIMARY KEY,
    cluster_id        text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    transactional_id  text NOT NULL,
    producer_id       bigint NOT NULL,
    producer_epoch    smallint NOT NULL,
    coordinator_epoch integer NOT NULL,
    commit            boolean NOT NULL,
    partition_id      bigint REFERENCES partitions (id) ON DELETE CASCADE,
    group_id          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((partition_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX txn_markers_partition ON txn_markers (partition_id) WHERE partition_id IS NOT NULL;
CREATE INDEX txn_markers_group ON txn_markers (cluster_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX txn_markers_txn ON txn_markers (cluster_id, transactional_id);

-- The aborted-transaction index of each partition (Kafka's .txnindex):
-- read_committed fetches return the aborted transactions overlapping what
-- they read. Inserted by the flush commit that writes the abort marker;
-- last_offset is the marker's offset. Retention deletes rows below the
-- log start.
CREATE TABLE aborted_txns (
    partition_id bigint NOT NULL REFERENCES partitions (id) ON DELETE CASCADE,
    producer_id  bigint NOT NULL,
    first_offset bigint NOT NULL,
    last_offset  bigint NOT NULL,
    PRIMARY KEY (partition_id, last_offset)
);

-- The first offset of a producer's open transaction on a partition (-1:
-- none), committed with the data like the rest of producer_states, so a
-- new leader knows its last stable offset without reading the log.
ALTER TABLE producer_states ADD COLUMN txn_first_offset bigint NOT NULL DEFAULT -1;

---- create above / drop below ----

ALTER TABLE producer_states DROP COLUMN txn_first_offset;
DROP TABLE aborted_txns, txn_markers, txn_offsets, transaction_groups,
    transaction_partitions, transactions;
