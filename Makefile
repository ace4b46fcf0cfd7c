# exportd — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BUF := node_modules/.bin/buf
GOLANGCI := bin/golangci-lint
# PostgreSQL for the storage suites; empty skips them (CI sets it).
EXPORTD_TEST_DATABASE_URL ?=
export EXPORTD_TEST_DATABASE_URL

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

.PHONY: build
build: ## Build exportd and exportctl into bin/
	CGO_ENABLED=0 $(GO) build -o bin/exportd ./cmd/exportd
	CGO_ENABLED=0 $(GO) build -o bin/exportctl ./cmd/exportctl

.PHONY: run
run: ## Run exportd on 127.0.0.1:8080, the embedded default (SQLite and artifacts in ./data)
	$(GO) run ./cmd/exportd serve --addr 127.0.0.1:8080

.PHONY: test
test: bin/grpcurl ## Run every test (PostgreSQL suites need EXPORTD_TEST_DATABASE_URL)
	$(GO) test -count=1 ./...

.PHONY: web
web: node_modules ## Rebuild the console into web/dist (embedded by exportd; committed)
	npm run --silent -w web build -- --logLevel warn

.PHONY: check-web
check-web: web ## Fail when the committed console build is not what make web produces
	@git add -N web/dist >/dev/null 2>&1 || true
	@git diff --exit-code --stat -- web/dist || { echo "web/dist is stale: run make web and commit"; exit 1; }

.PHONY: test-web
test-web: node_modules ## Console unit tests (Vitest) and the browser e2e test (needs /usr/bin/chromium)
	npm run --silent -w web test
	npm run --silent -w web e2e

.PHONY: test-race
test-race: ## Run the concurrency-sensitive packages under the race detector
	$(GO) test -count=1 -race ./server/... ./internal/...

.PHONY: generate
generate: node_modules ## Regenerate gen/ (buf) and ent/ from proto/ and ent/schema/
	$(BUF) generate
	$(GO) generate ./ent

.PHONY: check-generate
check-generate: generate ## Fail when generated code is not up to date
	@git add -N gen ent >/dev/null 2>&1 || true
	@git diff --exit-code --stat -- gen ent || { echo "generated code is stale: run make generate and commit"; exit 1; }

.PHONY: migration
migration: ## Write the next schema migration of each store from ent/schema (NAME=what_changed; needs a PostgreSQL in EXPORTD_TEST_DATABASE_URL)
	@[ -n "$(NAME)" ] || { echo "usage: make migration NAME=what_changed"; exit 2; }
	$(GO) run ./internal/migrations/gen -name $(NAME)

.PHONY: check-migrations
check-migrations: ## Fail when internal/migrations and ent/schema differ, or atlas.sum does not match
	$(GO) run ./internal/migrations/gen -check

$(GOLANGCI): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: lint
lint: node_modules $(GOLANGCI) ## go vet, golangci-lint, buf lint and buf format
	$(GO) vet ./...
	$(GOLANGCI) run ./...
	$(BUF) lint
	$(BUF) format -d --exit-code

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (FUZZTIME, default 10s)
	$(GO) test ./reports -run '^$$' -fuzz FuzzCell -fuzztime $${FUZZTIME:-10s}
	$(GO) test ./internal/apikey -run '^$$' -fuzz FuzzParseKey -fuzztime $${FUZZTIME:-10s}
	$(GO) test ./server -run '^$$' -fuzz FuzzProtoCodec -fuzztime $${FUZZTIME:-10s}

# PostgreSQL for make bench: EXPORTD_BENCH_DATABASE_URL, else the test one.
EXPORTD_BENCH_DATABASE_URL ?= $(EXPORTD_TEST_DATABASE_URL)
export EXPORTD_BENCH_DATABASE_URL

.PHONY: bench
bench: ## Measure exportd against COPY, pgbench and a plain file server (1M events; BENCH_FLAGS adds flags)
	@command -v pgbench >/dev/null || { echo "pgbench is missing: apt-get install postgresql-client (or postgresql-contrib)"; exit 1; }
	$(GO) run ./cmd/bench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## The same at small sizes, for CI: fails on errors, never on targets
	@command -v pgbench >/dev/null || { echo "pgbench is missing: apt-get install postgresql-client (or postgresql-contrib)"; exit 1; }
	$(GO) run ./cmd/bench -quick -out .ci/out/bench-quick.json $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## Run the Go benchmarks (go test -bench; the PostgreSQL ones need EXPORTD_TEST_DATABASE_URL)
	$(GO) test -run '^$$' -bench . -benchmem ./reports/... ./authz/...
	$(GO) test -run '^$$' -bench Download256MiB -benchtime 3x ./server/
	$(GO) test -run '^$$' -bench 'Ingest|CopyBaseline' -benchtime 100x ./internal/store/...

.PHONY: reliability
reliability: ## Fuzz every target (FUZZTIME each, default 1m), fault injection, replicas, authorization matrix: totals
	$(GO) run ./cmd/reliability -fuzztime $${FUZZTIME:-1m}

.PHONY: reliability-quick
reliability-quick: ## The same with seconds of fuzzing, for CI
	$(GO) run ./cmd/reliability -quick

.PHONY: ci
ci: lint check-generate check-web test test-web fuzz ## What CI runs

bin/grpcurl: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../bin/grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl
