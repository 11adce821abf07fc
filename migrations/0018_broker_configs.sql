-- Broker configs per virtual cluster (issue 20): the Kafka broker configs a
-- cluster has set explicitly (num.partitions, auto.create.topics.enable,
-- log.retention.ms, ...; internal/clusterconfig knows them and their
-- defaults). auto_create_topics and default_partitions become
-- auto.create.topics.enable and num.partitions, so each setting has one home.

ALTER TABLE virtual_clusters ADD COLUMN broker_configs jsonb NOT NULL DEFAULT '{}';

UPDATE virtual_clusters SET broker_configs =
    CASE WHEN auto_create_topics THEN '{}'::jsonb ELSE '{"auto.create.topics.enable": "false"}'::jsonb END ||
    CASE WHEN default_partitions = 1 THEN '{}'::jsonb ELSE jsonb_build_object('num.partitions', default_partitions::text) END;

ALTER TABLE virtual_clusters DROP COLUMN auto_create_topics, DROP COLUMN default_partitions;

---- create above / drop below ----

ALTER TABLE virtual_clusters
    ADD COLUMN auto_create_topics boolean NOT NULL DEFAULT true,
    ADD COLUMN default_partitions integer NOT NULL DEFAULT 1 CHECK (default_partitions > 0);

UPDATE virtual_clusters SET
    auto_create_topics = coalesce(broker_configs->>'auto.create.topics.enable', 'true')::boolean,
    default_partitions = coalesce(broker_configs->>'num.partitions', '1')::int;

ALTER TABLE virtual_clusters DROP COLUMN broker_configs;
