-- Plans with ceilings (issue 18). A billing plan also caps what the
-- clusters of the organisations on it may set: every limit of
-- internal/limits.Limits is a column of virtual_clusters (the cluster's
-- own limit) and of billing_plans (the plan's ceiling), under the same
-- name. A cluster's effective limit is the lower of the two, so one join
-- (virtual_clusters -> organizations -> billing_plans; clusters outside
-- any organisation use the default plan, 'standard') gives every effective
-- limit.
--
-- New limits: topics, consumer groups, the producer-id budget (ids per
-- hour and burst, until now the brokers' --producer-id-rate and
-- --producer-id-burst) and the ceilings of the retention configs. As in
-- 0013 the columns carry no DEFAULT once filled: limits.Defaults() is the
-- one place a cluster's defaults are written, and limits.Widest() (every
-- limit at the top of its range, what Validate allowed before plans) the
-- ceilings of a plan created without any, so no existing cluster or
-- tenant loses anything until the operator lowers a ceiling.

ALTER TABLE virtual_clusters
    ADD COLUMN max_topics            integer NOT NULL DEFAULT 1000 CHECK (max_topics > 0),
    ADD COLUMN max_groups            integer NOT NULL DEFAULT 10000 CHECK (max_groups > 0),
    ADD COLUMN producer_ids_per_hour integer NOT NULL DEFAULT 3600 CHECK (producer_ids_per_hour > 0),
    ADD COLUMN producer_id_burst     integer NOT NULL DEFAULT 1000 CHECK (producer_id_burst > 0),
    ADD COLUMN max_retention_ms      bigint NOT NULL DEFAULT 3153600000000 CHECK (max_retention_ms > 0),
    ADD COLUMN max_retention_bytes   bigint NOT NULL DEFAULT 1000000000000000 CHECK (max_retention_bytes > 0);
ALTER TABLE virtual_clusters
    ALTER COLUMN max_topics            DROP DEFAULT,
    ALTER COLUMN max_groups            DROP DEFAULT,
    ALTER COLUMN producer_ids_per_hour DROP DEFAULT,
    ALTER COLUMN producer_id_burst     DROP DEFAULT,
    ALTER COLUMN max_retention_ms      DROP DEFAULT,
    ALTER COLUMN max_retention_bytes   DROP DEFAULT;

ALTER TABLE billing_plans
    ADD COLUMN ingress_mbps          integer NOT NULL DEFAULT 10000 CHECK (ingress_mbps > 0),
    ADD COLUMN egress_mbps           integer NOT NULL DEFAULT 10000 CHECK (egress_mbps > 0),
    ADD COLUMN max_requests_per_sec  integer NOT NULL DEFAULT 1000000 CHECK (max_requests_per_sec > 0),
    ADD COLUMN max_connections       integer NOT NULL DEFAULT 100000 CHECK (max_connections > 0),
    ADD COLUMN max_partitions        integer NOT NULL DEFAULT 100000 CHECK (max_partitions > 0),
    ADD COLUMN max_storage_gb        bigint NOT NULL DEFAULT 1000000 CHECK (max_storage_gb > 0),
    ADD COLUMN max_topics            integer NOT NULL DEFAULT 100000 CHECK (max_topics > 0),
    ADD COLUMN max_groups            integer NOT NULL DEFAULT 100000 CHECK (max_groups > 0),
    ADD COLUMN producer_ids_per_hour integer NOT NULL DEFAULT 3600000 CHECK (producer_ids_per_hour > 0),
    ADD COLUMN producer_id_burst     integer NOT NULL DEFAULT 100000 CHECK (producer_id_burst > 0),
    ADD COLUMN max_retention_ms      bigint NOT NULL DEFAULT 3153600000000 CHECK (max_retention_ms > 0),
    ADD COLUMN max_retention_bytes   bigint NOT NULL DEFAULT 1000000000000000 CHECK (max_retention_bytes > 0),
    ADD COLUMN updated_at            timestamptz NOT NULL DEFAULT now();
ALTER TABLE billing_plans
    ALTER COLUMN ingress_mbps          DROP DEFAULT,
    ALTER COLUMN egress_mbps           DROP DEFAULT,
    ALTER COLUMN max_requests_per_sec  DROP DEFAULT,
    ALTER COLUMN max_connections       DROP DEFAULT,
    ALTER COLUMN max_partitions        DROP DEFAULT,
    ALTER COLUMN max_storage_gb        DROP DEFAULT,
    ALTER COLUMN max_topics            DROP DEFAULT,
    ALTER COLUMN max_groups            DROP DEFAULT,
    ALTER COLUMN producer_ids_per_hour DROP DEFAULT,
    ALTER COLUMN producer_id_burst     DROP DEFAULT,
    ALTER COLUMN max_retention_ms      DROP DEFAULT,
    ALTER COLUMN max_retention_bytes   DROP DEFAULT;

---- create above / drop below ----

ALTER TABLE billing_plans
    DROP COLUMN ingress_mbps, DROP COLUMN egress_mbps, DROP COLUMN max_requests_per_sec,
    DROP COLUMN max_connections, DROP COLUMN max_partitions, DROP COLUMN max_storage_gb,
    DROP COLUMN max_topics, DROP COLUMN max_groups, DROP COLUMN producer_ids_per_hour,
    DROP COLUMN producer_id_burst, DROP COLUMN max_retention_ms, DROP COLUMN max_retention_bytes,
    DROP COLUMN updated_at;
ALTER TABLE virtual_clusters
    DROP COLUMN max_topics, DROP COLUMN max_groups, DROP COLUMN producer_ids_per_hour,
    DROP COLUMN producer_id_burst, DROP COLUMN max_retention_ms, DROP COLUMN max_retention_bytes;
