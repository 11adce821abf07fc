# Eddy's developer entry points. `make dev` runs the whole service locally,
# `make test` is what CI runs (.ci/run). `make help` lists the targets.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
FUZZTIME ?= 30s
# Packages for test, test-race and vet: `make test PKGS=./internal/...`.
PKGS     ?= ./...
# Two test binaries at once: the CI machine has 2 cores, and every binary
# with Postgres tests starts its own private server (internal/pgtest).
TESTFLAGS ?= -count=1 -timeout 25m -p 2
RACEFLAGS ?= -race -count=1 -timeout 60m -p 2

# sudo only when not root (CI containers run as root and have no sudo).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: help deps console build image dev test test-deploy test-race testacc bench soak fuzz fmt vet clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# deps installs only what is missing, so a second run does nothing:
#   - PostgreSQL server binaries (Debian `postgresql`), used by `eddy dev`
#     and by internal/pgtest; skipped if any /usr/lib/postgresql/*/bin/initdb
#     exists. Installing the package also creates Debian's own "main"
#     cluster on port 5432; Eddy does not use it.
#   - kcat, the command-line Kafka client the README's examples use;
#   - python3-confluent-kafka (Debian's binding of the system librdkafka),
#     which the transaction tests use as librdkafka's transactional
#     producer (kcat cannot run transactions);
#   - npm itself, if missing, and test/js/node_modules and
#     console/web/node_modules (npm ci) when missing, incomplete or older
#     than their package-lock.json;
#   - chromium (Debian's), the headless browser the console's browser test
#     drives (console/browser_test.go, chromedp);
#   - moto_server (S3 fake, ships with the CI image); pip is tried if it is
#     missing, and a failure there only warns.
# apt-get update runs once, and only when a package must be installed.
deps: ## install missing test/dev dependencies (idempotent)
	@pkgs=""; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || pkgs="$$pkgs postgresql"; \
	command -v kcat >/dev/null || pkgs="$$pkgs kcat"; \
	/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || pkgs="$$pkgs python3-confluent-kafka"; \
	command -v npm  >/dev/null || pkgs="$$pkgs nodejs npm"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium"; \
	if [ -n "$$pkgs" ]; then \
		echo "deps: installing$$pkgs (apt)"; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; \
	fi
	@if [ ! -f test/js/node_modules/kafkajs/package.json ] || [ test/js/package-lock.json -nt test/js/node_modules ]; then \
		echo "deps: npm ci in test/js"; \
		(cd test/js && npm ci --no-audit --no-fund); \
		touch test/js/node_modules; \
	fi
	@if [ ! -f console/web/node_modules/vite/package.json ] || [ console/web/package-lock.json -nt console/web/node_modules ]; then \
		echo "deps: npm ci in console/web"; \
		(cd console/web && npm ci --no-audit --no-fund); \
		touch console/web/node_modules; \
	fi
	@if ! command -v moto_server >/dev/null; then \
		echo "deps: installing moto_server (pip)"; \
		python3 -m pip install --quiet 'moto[server]' || \
			echo "deps: WARNING: could not install moto[server]; tests that need moto_server will fail or skip"; \
	fi

# console builds the web console (console/web: TypeScript, Preact, uPlot)
# into console/dist, which the control plane embeds (go:embed): tsc checks
# the types, then Vite bundles. npm ci runs first when node_modules is
# missing or older than the lock file. Without it, go build still works
# and /console says the console is not built.
console: ## build the web console into console/dist (npm ci + vite)
	@if [ ! -f console/web/node_modules/vite/package.json ] || [ console/web/package-lock.json -nt console/web/node_modules ]; then \
		(cd console/web && npm ci --no-audit --no-fund) && touch console/web/node_modules; \
	fi
	cd console/web && npm run --silent build

build: console ## build bin/eddy (with the console)
	$(GO) build -o bin/eddy ./cmd/eddy

# image builds the eddy container image without a daemon or a base image
# (deploy/image: go-containerregistry, an empty image plus one layer with
# the static binary, run as uid 65532) and writes it as an OCI layout,
# bin/eddy-image/, and an OCI archive, bin/eddy-image.tar; it prints the
# digest. Reproducible: SOURCE_DATE_EPOCH (default: the commit's time)
# fixes every timestamp. VERSION defaults to git describe. It depends on
# console because the binary embeds console/dist: without it the image
# would ship whatever dist was last built, or none.
VERSION ?=
image: console ## build the OCI image bin/eddy-image.tar (offline, reproducible) and print its digest
	cd deploy && $(GO) run ./image -repo $(CURDIR) -out $(CURDIR)/bin/eddy-image $(if $(VERSION),-version $(VERSION))

dev: deps build ## run Eddy locally (Postgres, control plane, 3 brokers; data in .data/)
	./bin/eddy dev

# run_tests runs `go test $(1) $(PKGS)`, keeps the output and ends with a
# summary of failed packages and tests; it fails if go test failed.
define run_tests
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	echo "go test $(1) $(PKGS)"; \
	set +e; $(GO) test $(1) $(PKGS) 2>&1 | tee "$$log"; rc=$${PIPESTATUS[0]}; set -e; \
	echo; echo "==================== test summary ===================="; \
	echo "packages ok:       $$(grep -c '^ok ' "$$log" || true)"; \
	echo "packages no tests: $$(grep -c '^? ' "$$log" || true)"; \
	echo "packages FAILED:   $$(grep -cE '^FAIL[[:space:]]+[^[:space:]]' "$$log" || true)"; \
	grep -E '^FAIL[[:space:]]+[^[:space:]]' "$$log" | sed 's/^/  /' || true; \
	if grep -qE '^[[:space:]]*--- FAIL' "$$log"; then \
		echo "failed tests:"; grep -E '^[[:space:]]*--- FAIL' "$$log" | sed -E 's/^[[:space:]]*--- FAIL: /  /'; \
	fi; \
	if [ $$rc -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL (go test exit $$rc)"; fi; \
	exit $$rc
endef

# EDDY_BROWSER_REQUIRE makes the console's browser test fail, not skip,
# without chromium or the console's build (make console, a prerequisite).
test: export EDDY_BROWSER_REQUIRE := 1
test: deps console ## go vet + all tests, no race detector (what CI runs)
	$(GO) vet $(PKGS)
	$(call run_tests,$(TESTFLAGS))
	@if [ "$(PKGS)" = "./..." ]; then $(MAKE) --no-print-directory test-deploy; fi

# test-deploy runs the tests of deploy/, a module of its own so that
# go-containerregistry, helm and k8s.io/api stay out of the main go.mod:
# the image (built and run), the Helm chart (helm lint, helm template and
# strict decoding of every object) and the dashboards and alerts (every
# metric they name exists). `make test` runs it when PKGS is ./... .
test-deploy: ## tests of deploy/: image, Helm chart, dashboards and alerts
	cd deploy && $(GO) vet ./... && $(GO) test $(TESTFLAGS) ./...

test-race: export EDDY_BROWSER_REQUIRE := 1
test-race: deps console ## all tests under the race detector (slow on 2 cores)
	$(call run_tests,$(RACEFLAGS))

# testacc runs the Terraform provider's acceptance tests: the real
# terraform binary (PATH, or TF_ACC_TERRAFORM_PATH) against the provider
# served in-process and a control plane and broker started by the tests.
# `make test` runs them too whenever terraform is found; here a missing
# terraform is an error rather than a skip.
testacc: ## Terraform provider acceptance tests (needs terraform on PATH)
	@if [ -z "$${TF_ACC_TERRAFORM_PATH:-}" ] && ! command -v terraform >/dev/null; then \
		echo "testacc: no terraform binary on PATH and TF_ACC_TERRAFORM_PATH is unset"; exit 1; \
	fi
	TF_ACC=1 $(GO) test -count=1 -timeout 15m -v -run 'TestAcceptance|TestDocs' ./terraform/...

# bench runs `eddy bench`'s standard set (internal/bench.StandardSet) against
# a stack it starts itself (`eddy dev` on free ports in a temporary
# directory), side by side with franz-go's kfake and the machine's limits,
# then the transactions scenario (Eddy and kfake), then the share-group
# scenario (KIP-932 share groups of 1, 4 and 16 consumers on one partition
# next to a classic group on 16, Eddy and kfake), then the noisy-neighbour
# scenario (two tenants, Eddy only; tenant A's producers run in an
# `eddy bench-worker` child process), then (--s3) the S3 run: the
# latency-10MBps-acks-all workload on a second stack whose brokers store
# objects in a moto_server behind a latency injector modelling S3 Standard
# (internal/bench.StartS3Dev; needs moto_server), then (--scale-runs) the
# scale scenario on an idle pool of its own per run: 100 and 10,000
# partitions in one virtual cluster, and 10,000 over 1,000 clusters (idle
# Postgres transactions, PUTs, broker CPU and memory, Metadata latency),
# and rewrites docs/benchmarks.md and its charts (docs/benchmarks-*.png);
# the JSON report goes to bin/benchmarks.json. About 9 minutes in all,
# scale runs included (521 s on a quiet machine); `eddy bench --start-stack
# --standard --only transactions,share-groups` runs some. The Go
# micro-benchmarks run with `go test -run '^$' -bench . ./data-plane/...`.
BENCH_SCALE_RUNS ?= 100,10000,10000/1000
bench: build ## eddy bench's standard set vs kfake and the machine's limits -> docs/benchmarks.md
	@mkdir -p docs
	./bin/eddy bench --start-stack --standard --s3 --scale-runs $(BENCH_SCALE_RUNS) --markdown docs/benchmarks.md --charts docs --json bin/benchmarks.json

# soak runs the fault-injection harness (internal/chaos, docs/testing.md)
# for DURATION with a fault every FAULT_EVERY on average, drawn from SEED
# (default: the time) among KINDS (comma-separated, default all; e.g.
# KINDS=kill-broker FAULT_EVERY=20s kills a broker, and the coordinators
# it holds, every 20s), and writes its report (report.md, throughput.png)
# to SOAK_REPORT. The short run, TestChaosShort, is part of `make test`;
# this one is not (TestChaosSoak skips without EDDY_CHAOS_DURATION).
DURATION    ?= 1h
SEED        ?=
FAULT_EVERY ?= 10s
KINDS       ?=
SOAK_REPORT ?= bin/soak
soak: deps ## fault-injection soak: make soak DURATION=1h SEED=42 [KINDS=kill-broker] (report in bin/soak/)
	EDDY_CHAOS_DURATION=$(DURATION) EDDY_CHAOS_SEED=$(SEED) EDDY_CHAOS_FAULT_EVERY=$(FAULT_EVERY) EDDY_CHAOS_KINDS=$(KINDS) \
		EDDY_CHAOS_REPORT_DIR=$(abspath $(SOAK_REPORT)) \
		$(GO) test -count=1 -v -timeout 0 -run '^TestChaosSoak$$' ./internal/chaos

# go test -fuzz takes one package and one target at a time, so list the
# Fuzz functions of every package and run each for FUZZTIME.
fuzz: ## run every fuzz target for FUZZTIME (default 30s)
	@list=$$($(GO) test -list '^Fuzz' ./... 2>/dev/null || true); \
	failed=$$(awk '/^FAIL[ \t]+[^ \t]/ { printf " %s(does-not-build)", $$2 }' <<< "$$list"); \
	targets=$$(awk '/^Fuzz/ { names[n++] = $$1; next } /^ok / { for (i = 0; i < n; i++) print $$2, names[i] } { n = 0 }' <<< "$$list"); \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets found"; fi; \
	while read -r pkg name; do \
		[ -n "$$pkg" ] || continue; \
		echo "fuzz: $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg" || failed="$$failed $$pkg.$$name"; \
	done <<< "$$targets"; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi; \
	echo "fuzz: all targets passed"

fmt: ## gofmt every Go file
	@find . -name '*.go' -not -path './.data/*' -not -path './test/js/node_modules/*' -print0 | xargs -0 -r gofmt -w

vet: ## go vet ./...
	$(GO) vet $(PKGS)

# clean deletes .data/, which holds `make dev`'s Postgres cluster, object
# store and broker state. Stop `make dev` first: removing the files under a
# running Postgres leaves it serving a deleted directory.
clean: ## remove bin/ and .data/ (stop `make dev` first)
	rm -rf bin/ .data/
