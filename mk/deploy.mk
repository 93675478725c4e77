# Deployment targets (included from the Makefile).
#   make dist    release tarball dist/remora-<version>-linux-<arch>.tar.gz (scripts/dist.sh)
#   make chaos   full fault suite: 600 jobs, 2 APIs, 3 workers, 5 sshd hosts, PostgreSQL, with
#                kill -9 of a worker and of the queue and an API restart (scripts/chaos.sh)
#   make chaos-quick   the bounded form (300 jobs over 45 s, about 1.5 minutes) that `make test` runs
#   make deploy-check  static checks: .env.template lists every REMORA_* the code reads, units, compose

.PHONY: dist chaos chaos-quick deploy-check

dist:
	scripts/dist.sh

chaos: deps
	$(CARGO) build --workspace --bins
	scripts/chaos.sh

chaos-quick: deps
	$(CARGO) build --workspace --bins
	CHAOS_JOBS=300 CHAOS_SECONDS=45 CHAOS_SETTLE=90 scripts/chaos.sh

deploy-check:
	deployment/check.sh
