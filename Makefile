# mwan-rs: build, test, demo and benchmarks. Run as root on Debian 12
# (network namespaces, nftables and raw sockets need it).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Debian packages the tests, the demo and the benchmarks use. Only test and
# benchmark tooling: mwand itself never runs any of them.
APT_PACKAGES := iproute2 nftables iputils-ping fping conntrack strace shellcheck procps xz-utils \
	python3-prometheus-client chromium nodejs npm
APT_COMMANDS := ip nft ping fping conntrack strace shellcheck ps xz chromium node npm

BENCH_BINS = $(sort $(notdir $(basename $(wildcard integration/src/bin/bench-*.rs))))

# The one executable's applets: links to target/<profile>/mwan, as on the router.
APPLETS := mwand mwan-track mwanctl mwan3
link_applets = cd target/$(1) && for a in $(APPLETS); do ln -sfn mwan $$a; done

# mwand's own dashboard listener (`mwand --http`) is cargo feature http of
# mwan. The router build (`make release`, what the OpenWrt package ships and
# size-budget.txt measures) leaves it out: on OpenWrt the dashboard is
# luci-app-mwan over ubus. Debug builds, the tests and the demo have it.
HTTP_FEATURES := --features mwan/http

.PHONY: all build release release-full install test unit integration demo bench footprint validate deps clean web web-test cross-test fuzz

# The dashboard's files, embedded gzip-compressed in mwand (docs/dashboard.md).
# The .gz files are committed; a test in mwand checks they match.
WEB_FILES := web/index.html web/mwan.css web/mwan.js

all: build

## deps: install the Debian packages above when a command is missing.
deps:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null || missing="$$missing prometheus_client"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: missing:$$missing; installing $(APT_PACKAGES)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get needs it)" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@# playwright-core for the browser tests, at the version package-lock.json pins.
	@[ -d integration/web/node_modules/playwright-core ] || (cd integration/web && npm ci --no-audit --no-fund)
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found: install Rust 1.85 or newer with rustup (Debian 12's cargo is too old)" >&2; exit 1; }
	@v=$$(rustc --version | awk '{print $$2}'); \
	if [ "$$(printf '%s\n1.85.0\n' "$$v" | sort -V | head -n1)" != 1.85.0 ]; then \
	  echo "make: rustc $$v is older than 1.85: install a newer toolchain with rustup" >&2; exit 1; fi

## build: debug binaries of the whole workspace, with the HTTP listener
## (the integration and browser tests run mwand --http).
build:
	$(CARGO) build --workspace --bins $(HTTP_FEATURES)
	$(call link_applets,debug)

## release: the router build: size-tuned, default features, no HTTP listener
## (what ships, what size-budget.txt and the benchmarks measure).
release:
	$(CARGO) build --release --workspace --bins
	$(call link_applets,release)

## release-full: the release executable with mwand's HTTP listener (and the
## testbed) for the demo, in target/full/release: a target dir of its own, so
## it never replaces the router build. `make test` does not build it.
release-full:
	CARGO_TARGET_DIR=target/full $(CARGO) build --release -p mwan -p mwan-testbed $(HTTP_FEATURES)
	$(call link_applets,full/release)

## install: what the OpenWrt package installs, into DESTDIR (openwrt-package/install.sh).
install: release
	openwrt-package/install.sh target/release/mwan "$(DESTDIR)"

## test: unit, property and integration tests (integration tests need root).
# Integration tests spawn mwand, mwan-track and mwan-testbed from the target
# dir, and cargo builds other packages' binaries only when asked: build first.
# --features mwan/http keeps target/debug/mwan the one `make build` made (and
# runs mwand's HTTP tests); the second line tests mwand as the router has it.
test: deps build
	$(CARGO) test --workspace --no-fail-fast $(HTTP_FEATURES)
	$(CARGO) test -p mwand --lib
	$(CARGO) test --release -p mwan-core --test sim_noise --test sim_swaps -- --include-ignored
	# The page against canned replies (the real mwand's is tests/mwand_dashboard.rs).
	node integration/web/render.mjs
	# The OpenWrt package's shell files are shellchecked by mwan-ubus's package test.
	shellcheck integration/*.sh
	# The installed files against size-budget.txt (the router build: what ships).
	$(MAKE) --no-print-directory release
	# The router build takes --http (the init script passes globals' http) with a
	# warning naming luci-app-mwan and runs on: here to the config it cannot read.
	out=$$(target/release/mwan mwand --http 127.0.0.1:0 --config /dev/null/mwan --run-dir /dev/null/run 2>&1); \
	  grep -q luci-app-mwan <<<"$$out" && grep -q "/dev/null/mwan:0: cannot read" <<<"$$out" \
	  || { echo "router build: mwand --http did not warn and run on: $$out" >&2; exit 1; }
	integration/footprint.sh --check

## cross-test: build for armv7 and s390x (big-endian) with Debian trixie's
# Rust 1.85 in a chroot and run the unprivileged tests under qemu-user; see
# docs/cross.md. CROSS_TARGETS="armv7 aarch64 s390x" adds 64-bit ARM.
CROSS_TARGETS ?= armv7 s390x
cross-test:
	integration/cross/cross-test.sh $(CROSS_TARGETS)

## fuzz: every fuzz target for FUZZ_SECONDS each (docs/fuzzing.md); stable toolchain.
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

## demo: two simulated WANs, mwand failing over live, cleaned up after
## (the full build: its dashboard is mwand --http).
demo: deps release-full
	integration/demo.sh

## bench: every benchmark's figures (see integration/README.md).
bench: deps release footprint
	@for b in $(BENCH_BINS); do echo; echo "=== $$b ==="; target/release/$$b || exit 1; done

## footprint: installed sizes (plain, gzip, xz) and each crate's share of the code.
# cargo bloat builds with symbols: in a target dir of its own, so it does not
# replace the stripped release build.
footprint: release
	@echo "=== installed footprint ==="
	@integration/footprint.sh
	@echo; echo "=== each crate's share of mwan's .text (cargo bloat --release --crates) ==="
	@if $(CARGO) bloat --version >/dev/null 2>&1; then \
	  CARGO_TARGET_DIR=target/bloat $(CARGO) bloat --release --crates -p mwan -n 25 2>/dev/null; \
	else echo "cargo bloat not installed (cargo install cargo-bloat): table skipped"; fi

## validate: formatting and lints, as CI expects them.
validate:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets $(HTTP_FEATURES) -- -D warnings

## web: recompress the dashboard after editing web/.
web: $(WEB_FILES:=.gz)
	@cat $(WEB_FILES:=.gz) | wc -c | xargs printf 'dashboard: %s bytes gzipped\n'

## web-test: the page rendered in headless Chromium against canned API
## replies (not mwand's state); screenshots in target/screenshots/. Then
## Chromium loads it from mwand's own HTTP server code (http::server).
web-test: $(WEB_FILES:=.gz)
	@command -v chromium >/dev/null || { echo "make web-test: apt-get install chromium" >&2; exit 1; }
	@[ -d integration/web/node_modules/playwright-core ] || (cd integration/web && npm ci --no-audit --no-fund)
	node integration/web/render.mjs
	$(CARGO) test -p mwand --features http http::server::tests::chromium -- --include-ignored

web/%.gz: web/%
	gzip -9 -n -c $< > $@

clean:
	$(CARGO) clean
