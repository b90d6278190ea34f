# fleetdeck's developer entry points. `make test` is the one command the
# README and CI use: it installs or builds what the tests need (a Consul
# agent built from tools/consul, cached), then runs every test with nothing
# skipped.

GO ?= go
# Tests that need Consul fail instead of skipping when it cannot be had.
export FLEETDECK_REQUIRE_CONSUL := 1

.PHONY: test deps consul lint bench

test: deps
	FLEETDECK_CONSUL_BIN="$$($(GO) run ./internal/consulagent/cmd/consulbin)" && \
	export FLEETDECK_CONSUL_BIN && \
	$(GO) vet ./... && \
	$(GO) test -count=1 -timeout 20m ./...

# deps installs the system packages tests use (as root, with apt) when they
# are missing. Nothing is installed when they are already there.
deps:
	@missing=""; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	command -v ansible-playbook >/dev/null || missing="$$missing ansible-core"; \
	command -v ssh >/dev/null || missing="$$missing openssh-client"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "please install:$$missing (e.g. sudo apt-get install --no-install-recommends$$missing)"; exit 1; \
		fi; \
	fi

# consul builds (or finds) the Consul agent and prints its path.
consul:
	@$(GO) run ./internal/consulagent/cmd/consulbin

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# bench runs the benchmarks and prints the table recorded in
# docs/benchmarks.md.
bench:
	./bench/run.sh
