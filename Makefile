# Remora — see README.md. `make up` starts the product, `make test` runs every suite.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: up web build test test-rust test-up test-api-spec test-openapi test-web screenshots web-benchmarks bench-retention web-types deps clean

## Build and run API + queue + worker + demo SSH host on SQLite under ./data.
up: build web
	./target/debug/remora up --demo

## The dashboard's static export (web/out), rebuilt when its sources changed.
web:
	scripts/build-web.sh

build:
	$(CARGO) build --bins

## Every suite: unit, integration and end-to-end tests against real OpenSSH sshd
## and a throwaway PostgreSQL cluster. As root, installs missing packages (apt).
test: deps test-rust test-up test-openapi test-api-spec chaos-quick deploy-check test-web

deps:
	scripts/install-deps.sh

test-rust:
	$(CARGO) build --workspace --tests --bins
	CI=$${CI:-true} scripts/with-postgres.sh bash -c 'scripts/cargo-test.sh && scripts/cargo-test-pg.sh'

## The README's first steps: `remora up --demo` on a fresh data dir, a job on local-demo.
test-up: build
	scripts/smoke-up.sh

## The OpenAPI document validates (openapi-spec-validator) and yields a client (openapi-typescript).
test-openapi:
	scripts/openapi-check.sh

## schemathesis against the OpenAPI spec of a running stack (bounded).
test-api-spec: build
	scripts/schemathesis.sh 30

## Dashboard: generated API types up to date, build, component tests (Vitest),
## browser tests (Playwright + Chromium). Leaves `git status` clean.
test-web: build
	bash web/scripts/test.sh

## The README's screenshots (docs/screenshots/): the dashboard's end-to-end
## tests with their pictures written there instead of web/e2e-artifacts/.
screenshots: build web
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots REMORA_E2E_BENCH=0 bash web/scripts/e2e.sh e2e/dashboard.spec.ts e2e/recurring.spec.ts e2e/credentials.spec.ts e2e/hostkeys.spec.ts

## web/benchmarks.md: the dashboard's measurements (10k-job list, 100k-line log).
web-benchmarks: build web
	REMORA_BENCH_OUT=$(CURDIR)/web/benchmarks.md bash web/scripts/e2e.sh e2e/perf.spec.ts e2e/fleet.spec.ts

## docs/benchmarks.md#retention: purge of 1M finished jobs with submissions beside it (not in `make test`).
bench-retention:
	bash bench/retention/run.sh $(JOBS)

## Regenerate web/lib/api-types.gen.ts from the API's OpenAPI document.
web-types:
	bash web/scripts/gen-types.sh

clean:
	$(CARGO) clean

include mk/deploy.mk
