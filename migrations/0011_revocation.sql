-- Revocation: brokers close connections whose credential is gone. Channel
-- eddy_revoke carries 'key:<api key id>' when an API key is deleted and
-- 'account:<service account id>' when a service account is; a service
-- account's keys cascade with it and announce themselves too. Triggers
-- rather than store code, so no path that deletes credentials (REST,
-- cascades from an organisation or cluster) can forget to tell. Brokers
-- also re-check their connections' credentials periodically, for
-- notifications lost while their listener was away.
CREATE FUNCTION eddy_revoke_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'api_keys' THEN
        PERFORM pg_notify('eddy_revoke', 'key:' || OLD.id);
    ELSE
        PERFORM pg_notify('eddy_revoke', 'account:' || OLD.id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_revoke_notify AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION eddy_revoke_notify();
CREATE TRIGGER service_accounts_revoke_notify AFTER DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION eddy_revoke_notify();

---- create above / drop below ----

DROP TRIGGER service_accounts_revoke_notify ON service_accounts;
DROP TRIGGER api_keys_revoke_notify ON api_keys;
DROP FUNCTION eddy_revoke_notify();
