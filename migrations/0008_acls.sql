-- Authorization: Kafka ACLs of virtual clusters, and the notifications
-- that tell brokers to drop cached authorization decisions.
--
-- An ACL grants (allow) or refuses (deny) one Kafka operation on the
-- resources of one virtual cluster that its pattern names, to a principal
-- ('User:<service-account-id>', or 'User:*' for every principal), from a
-- host ('*' for any). Resource names and principals are scoped to the
-- cluster: an ACL never reaches another cluster, whatever it names.
-- Values are Kafka's names in lower case (operation 'describe_configs',
-- resource type 'transactional_id', ...); a literal resource name '*'
-- matches every resource of its type, as in Kafka.

CREATE TABLE acls (
    id            text PRIMARY KEY,
    cluster_id    text NOT NULL REFERENCES virtual_clusters (id) ON DELETE CASCADE,
    principal     text NOT NULL CHECK (principal LIKE 'User:%'),
    resource_type text NOT NULL CHECK (resource_type IN ('topic', 'group', 'cluster', 'transactional_id')),
    resource_name text NOT NULL CHECK (resource_name <> ''),
    pattern_type  text NOT NULL CHECK (pattern_type IN ('literal', 'prefixed')),
    operation     text NOT NULL CHECK (operation IN ('all', 'read', 'write', 'create', 'delete', 'alter',
                      'describe', 'cluster_action', 'describe_configs', 'alter_configs', 'idempotent_write')),
    permission    text NOT NULL CHECK (permission IN ('allow', 'deny')),
    host          text NOT NULL DEFAULT '*',
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Kafka treats an ACL as a value: creating the same binding twice
    -- keeps one.
    UNIQUE (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host)
);
-- Brokers load the ACLs of one principal in one cluster.
CREATE INDEX acls_principal_idx ON acls (cluster_id, principal);

-- Brokers cache what each principal may do and forget it when told on
-- channel eddy_authz: the payload is the cluster whose grants changed, or
-- '*' when a change may touch any cluster of an organisation (a service
-- account deleted or made org admin). Triggers rather than store code, so
-- no path that changes grants (REST, Kafka ACL APIs, cascading deletes)
-- can forget to tell. pg_notify folds duplicates within a transaction.
CREATE FUNCTION eddy_authz_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'service_accounts' THEN
        PERFORM pg_notify('eddy_authz', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('eddy_authz', OLD.cluster_id);
    ELSE
        PERFORM pg_notify('eddy_authz', NEW.cluster_id);
        IF TG_OP = 'UPDATE' AND OLD.cluster_id <> NEW.cluster_id THEN
            PERFORM pg_notify('eddy_authz', OLD.cluster_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER acls_authz_notify AFTER INSERT OR UPDATE OR DELETE ON acls
    FOR EACH ROW EXECUTE FUNCTION eddy_authz_notify();
CREATE TRIGGER role_bindings_authz_notify AFTER INSERT OR UPDATE OR DELETE ON role_bindings
    FOR EACH ROW EXECUTE FUNCTION eddy_authz_notify();
CREATE TRIGGER service_accounts_authz_notify AFTER UPDATE OF org_admin OR DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION eddy_authz_notify();

---- create above / drop below ----

DROP TRIGGER service_accounts_authz_notify ON service_accounts;
DROP TRIGGER role_bindings_authz_notify ON role_bindings;
DROP TRIGGER acls_authz_notify ON acls;
DROP FUNCTION eddy_authz_notify();
DROP TABLE acls;
