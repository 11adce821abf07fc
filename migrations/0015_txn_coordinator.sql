-- The transaction coordinator's one addition to 0014: the epoch before
-- the last bump, so that an InitProducerId retried after its answer was
-- lost (KIP-360: the client sends the id and epoch it had) is recognised
-- and answered with the current epoch instead of fencing the producer
-- that caused the bump (Kafka's lastProducerEpoch).
ALTER TABLE transactions ADD COLUMN last_producer_epoch smallint NOT NULL DEFAULT -1;

---- create above / drop below ----

ALTER TABLE transactions DROP COLUMN last_producer_epoch;
