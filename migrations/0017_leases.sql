-- Leases (issue 23): a control plane's singleton loops (placement and the
-- rebalancer, the autoscaler, the ledger) run on the one replica that holds
-- the lease of that name. expires_at is Postgres's clock, so replicas never
-- compare their own clocks; epoch grows by one at every change of holder
-- (and every new term of the same holder), and the writes of a term check
-- it (the fence) so a deposed holder's in-flight writes fail.

CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    epoch      bigint NOT NULL CHECK (epoch > 0),
    expires_at timestamptz NOT NULL
);
