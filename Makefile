# mwan-rs: build, test, demo and benchmarks. Run as root on Debian 12
# (network namespaces, nftables and raw sockets need it).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Debian packages the tests, the demo and the benchmarks use. Only test and
# benchmark tooling: mwand itself never runs any of them.
APT_PACKAGES := iproute2 nftables iputils-ping fping conntrack strace shellcheck procps
APT_COMMANDS := ip nft ping fping conntrack strace shellcheck ps

BENCH_BINS = $(sort $(notdir $(basename $(wildcard integration/src/bin/bench-*.rs))))

.PHONY: all build release test unit integration demo bench validate deps clean cross-test

all: build

## deps: install the Debian packages above when a command is missing.
deps:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: missing:$$missing; installing $(APT_PACKAGES)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get needs it)" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found: install Rust 1.85 or newer with rustup (Debian 12's cargo is too old)" >&2; exit 1; }
	@v=$$(rustc --version | awk '{print $$2}'); \
	if [ "$$(printf '%s\n1.85.0\n' "$$v" | sort -V | head -n1)" != 1.85.0 ]; then \
	  echo "make: rustc $$v is older than 1.85: install a newer toolchain with rustup" >&2; exit 1; fi

## build: debug binaries of the whole workspace.
build:
	$(CARGO) build --workspace --bins

## release: size-tuned binaries (what ships, what the demo and benchmarks run).
release:
	$(CARGO) build --release --workspace --bins

## test: unit, property and integration tests (integration tests need root).
# Integration tests spawn mwand, mwan-track and mwan-testbed from the target
# dir, and cargo builds other packages' binaries only when asked: build first.
test: deps build
	$(CARGO) test --workspace --no-fail-fast
	$(CARGO) test --release -p mwan-core --test sim_noise --test sim_swaps -- --include-ignored
	# The OpenWrt package's shell files are shellchecked by mwan-ubus's package test.
	shellcheck integration/*.sh

## cross-test: build for armv7 and s390x (big-endian) with Debian trixie's
# Rust 1.85 in a chroot and run the unprivileged tests under qemu-user; see
# docs/cross.md. CROSS_TARGETS="armv7 aarch64 s390x" adds 64-bit ARM.
CROSS_TARGETS ?= armv7 s390x
cross-test:
	integration/cross/cross-test.sh $(CROSS_TARGETS)

## demo: two simulated WANs, mwand failing over live, cleaned up after.
demo: deps release
	integration/demo.sh

## bench: every benchmark's figures (see integration/README.md).
bench: deps release
	@for b in $(BENCH_BINS); do echo; echo "=== $$b ==="; target/release/$$b || exit 1; done

## validate: formatting and lints, as CI expects them.
validate:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
