// Package layering holds no code: its test enforces how Eddy's packages
// may depend on each other, from `go list` of the whole module.
//
//	api, cmd/eddy, terraform         (top: wire everything)
//	control-plane/...                placement, tenancy, billing loops
//	data-plane/...                   broker, leader, group, wal, sasl
//	tiered/...                       object stores, object format, compaction, gc
//	internal/store, internal/batch   leaves both planes and tiered use
//
// The rules:
//
//   - Only internal/store holds application SQL: no other Eddy package
//     imports pgx, except migrations and the Postgres harnesses
//     internal/pgtest and internal/pgserver.
//   - tiered depends on neither plane, and the data plane does not depend
//     on the control plane (checked on every package they depend on, not
//     only their direct imports).
//   - internal/store and internal/batch depend on neither plane, tiered,
//     api nor cmd.
//
// Tests may reach upwards through harnesses (internal/stack,
// internal/tieredtest); a test that imports a package a rule forbids
// directly is listed in the test with its reason, and an entry of that
// list that no longer matches anything fails the test too.
package layering
