-- A virtual cluster's IP allow-list (issue 24): the client addresses
-- (CIDR blocks, in their network form) its Kafka connections and its REST
-- sub-resources (topics, records, groups, ACLs, ...) are accepted from.
-- Empty: from anywhere. Brokers read it with the metadata snapshot.
ALTER TABLE virtual_clusters ADD COLUMN allowed_cidrs text[] NOT NULL DEFAULT '{}';
