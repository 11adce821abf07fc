-- SCRAM-SHA-256/512 credentials of API keys (internal/scram's JSON:
-- mechanism -> salt, iterations, stored_key, server_key), derived from the
-- secret when the key is created. Keys created before this migration have
-- none: they log in with PLAIN or OAUTHBEARER only.
ALTER TABLE api_keys ADD COLUMN scram jsonb;

---- create above / drop below ----

ALTER TABLE api_keys DROP COLUMN scram;
