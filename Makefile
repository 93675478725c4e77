# Remora — see README.md. `make up` starts the product, `make test` runs every suite.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: up build test test-rust deps dist clean

## Build and run API + queue + worker + demo SSH host on SQLite under ./data.
up: build
	./target/debug/remora up --demo

build:
	$(CARGO) build --bins

## Every suite: unit, integration and end-to-end tests against real OpenSSH sshd
## and a throwaway PostgreSQL cluster. As root, installs missing packages (apt).
test: deps test-rust

deps:
	scripts/install-deps.sh

test-rust:
	$(CARGO) build --workspace --tests --bins
	CI=$${CI:-true} scripts/with-postgres.sh scripts/cargo-test.sh

clean:
	$(CARGO) clean
