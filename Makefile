# Sutra Grid Events. Quick start: `make run`, `make test`.
SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := liblz4-dev libxxhash-dev pkg-config
# The dashboard's browser test runs headless Chromium; the NATS client and replication tests run real nats-server processes.
TEST_APT_PACKAGES := chromium nats-server
# The interop tests drive the OpenTelemetry Python SDK, prometheus_client's parser and schemathesis (from PyPI).
TEST_PIP_PACKAGES := opentelemetry-sdk opentelemetry-exporter-otlp-proto-http prometheus_client schemathesis
TEST_PY_MODULES := opentelemetry.sdk,opentelemetry.exporter.otlp.proto.http,prometheus_client,schemathesis
# The benchmarks compare against SQLite through its C library.
BENCH_APT_PACKAGES := libsqlite3-dev
BENCH_EVENTS ?= 1000000
BENCH_RUNS ?= 3
# Extra grid-bench flags, e.g. BENCH_FLAGS=--ten-million for the 10M-event open, size and grid-state rows, or
# BENCH_FLAGS=--grid-state-only for just the grid-state rows (/api/grid/agents, time travel, checkpoints), or
# BENCH_FLAGS=--text-only for just the text search rows (word index against SQLite FTS5).
BENCH_FLAGS ?=
DATA_DIR ?= ./data
# Fuzzing: seconds per target for `make fuzz`, and for the smoke pass `make test` runs.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_BUILD_FLAGS := -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address

.PHONY: deps test-deps apt-install pip-install otlp-proto build release test example-check run run-cluster bench fuzz fuzz-build fuzz-smoke fuzz-corpus chaos clean difftest crashstates \
	install uninstall install-build install-check man version
# The differential query test: `make test` runs one random world; `make difftest SECONDS=600` keeps building new
# worlds (new seeds) for that long. DIFFTEST_SEED=N replays one.
SECONDS ?= 600
# The crash-state explorer (power loss at the store's recorded system calls): `make test` checks about a thousand
# states with a fixed seed; `make crashstates` keeps exploring new ones for CRASHSTATES_SECONDS (or until
# CRASHSTATES_COUNT states), with a new seed each time unless CRASHSTATES_SEED=N is given.
CRASHSTATES_SECONDS ?= 600
CRASHSTATES_COUNT ?=
CRASHSTATES_SEED ?=
# The fault campaign (`make chaos`; a short run is part of `make test`).
CHAOS_ROUNDS ?= 100
CHAOS_SOAK_SECONDS ?= 180
CHAOS_RATE ?= 6000

# Installs the system libraries the build links against, when missing (needs root or sudo).
deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

# What the tests need besides the build: headless Chromium for the dashboard test, nats-server for replication.
test-deps: deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_APT_PACKAGES)"
	@$(MAKE) --no-print-directory pip-install

# Installs the Python test tools with pip when one of them cannot be imported (quiet, idempotent).
pip-install:
	@python3 -c "import $(TEST_PY_MODULES)" >/dev/null 2>&1 || { \
		echo "installing with pip: $(TEST_PIP_PACKAGES)"; \
		python3 -m pip install -q --disable-pip-version-check $(TEST_PIP_PACKAGES); }

# Regenerates Sources/GridOTLP/otlp_logs.pb.swift from Proto/otlp_logs.proto with swift-protobuf 1.39.0's protoc
# plugin (built once in .build-protoc-src, about 2 minutes). Not part of any build: the generated file is committed.
otlp-proto: deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="protobuf-compiler"
	@[ -d .build-protoc-src ] || git clone -q https://github.com/apple/swift-protobuf .build-protoc-src
	git -C .build-protoc-src checkout -q 1.39.0
	$(SWIFT) build -c release --product protoc-gen-swift --package-path .build-protoc-src
	protoc --plugin=protoc-gen-swift=.build-protoc-src/.build/release/protoc-gen-swift --swift_out=Sources/GridOTLP \
		--swift_opt=Visibility=Public -I Proto Proto/otlp_logs.proto

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	.build/debug/grid-chaos --scenario all --rounds 10 --soak-seconds 15 --rate 2000 --json .build/chaos-short.json
	@$(MAKE) --no-print-directory example-check
	@$(MAKE) --no-print-directory fuzz-smoke

# Examples/instrumented-service, an outside package linking only EventEmitter: checks it links no liblz4 or
# libxxhash, runs it against a real grid-eventd (temporary directory) and reads its events back over HTTP.
example-check: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) Tools/check-example.sh .build/debug

# The differential test of the query engine against a plain scan, with new random worlds for $(SECONDS) seconds.
difftest: deps
	$(SWIFT) build --build-tests
	DIFFTEST_SECONDS=$(SECONDS) $(SWIFT) test --skip-build --filter "DifferentialTests|HTTPAnswersTests|TranslatorRobustnessTests"

# Power loss at every recorded system call, states sampled for $(CRASHSTATES_SECONDS) s; prints the seed and the count.
crashstates: deps
	$(SWIFT) build --build-tests
	CRASHSTATES_SECONDS=$(CRASHSTATES_SECONDS) CRASHSTATES_COUNT=$(CRASHSTATES_COUNT) CRASHSTATES_SEED=$(CRASHSTATES_SEED) \
		$(SWIFT) test --skip-build --filter "CrashStateTests.longExploration"

# The full fault campaign in release mode: crash loop ($(CHAOS_ROUNDS) SIGKILLs), full disk, failing fdatasync, bit
# flips, hostile clients and a $(CHAOS_SOAK_SECONDS) s soak; prints the summary, JSON in .build/chaos-results.json.
# Its own release build with GRID_FAULT_INJECTION (the fdatasync scenario needs GRID_EVENTD_FAULTS, which plain
# release builds refuse), in .build/chaos so the release binaries stay without it.
chaos: deps
	$(SWIFT) build -c release --scratch-path .build/chaos -Xswiftc -DGRID_FAULT_INJECTION
	.build/chaos/release/grid-chaos --scenario all --rounds $(CHAOS_ROUNDS) --soak-seconds $(CHAOS_SOAK_SECONDS) \
		--rate $(CHAOS_RATE) --json .build/chaos-results.json

# Starts the local grid in the foreground: grid-eventd (data in $(DATA_DIR), dashboard on
# http://127.0.0.1:7780/), grid-master (127.0.0.1:7000) and one grid-agent. Ctrl-C stops everything cleanly.
run: release
	DATA_DIR=$(DATA_DIR) BIN=.build/release Tools/run-grid.sh

# A replicated grid on loopback: 3 NATS JetStream servers, 3 host grid-eventd's replicating, an aggregator with the
# cluster dashboard on http://127.0.0.1:7780/, grid-master and one agent per host (Tools/run-cluster.sh).
run-cluster: release
	@$(MAKE) --no-print-directory apt-install PACKAGES="nats-server"
	DATA_DIR=$(DATA_DIR)/cluster BIN=.build/release Tools/run-cluster.sh

# Builds in release mode and prints one table, grid-events against SQLite on the same generated events,
# also written to .build/bench-results.json. BENCH_EVENTS and BENCH_RUNS scale it.
bench: release
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(BENCH_APT_PACKAGES)"
	@$(MAKE) --no-print-directory pip-install
	cd Benchmarks && $(SWIFT) build -c release
	cd Benchmarks && .build/release/grid-bench --events $(BENCH_EVENTS) --runs $(BENCH_RUNS) --json ../.build/bench-results.json --bin ../.build/release $(BENCH_FLAGS)

# Builds the libFuzzer targets (Fuzz/, one per decoder) with libFuzzer and AddressSanitizer.
fuzz-build: deps
	@dir=$$(Tools/fuzz-mirror.sh) && cd "$$dir" && GRID_FUZZ_BUILD=1 $(SWIFT) build $(FUZZ_BUILD_FLAGS)

# Runs every fuzz target FUZZ_SECONDS (default 60) seconds; FUZZ_TARGETS="a b" picks some. Crash inputs land in
# Fuzz/Regressions/<target>/ (which swift test replays) and fail the run. Table in .build/fuzz-work/summary.txt.
fuzz: fuzz-build
	Tools/fuzz-run.sh "$$(Tools/fuzz-mirror.sh)/.build/release" $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A few seconds per target with a fixed seed, so the fuzz build and harnesses never rot (part of make test).
fuzz-smoke: fuzz-build
	FUZZ_SEED=1 Tools/fuzz-run.sh "$$(Tools/fuzz-mirror.sh)/.build/release" $(FUZZ_SMOKE_SECONDS)

# Rewrites the seed corpus Fuzz/Corpus/<target>/seed-NN from real encodings (FuzzTargets' seeds).
fuzz-corpus: deps
	$(SWIFT) build --build-tests
	FUZZ_WRITE_CORPUS=1 $(SWIFT) test --skip-build --filter FuzzRegressionTests.testWriteCorpus

clean:
	rm -rf .build

# Installing: `make install PREFIX=/usr/local DESTDIR=...` builds in release (INSTALL_CONFIG=debug reuses a debug
# build; INSTALL_SKIP_BUILD=1 installs what is built) and installs the executables, their man pages (made by
# ArgumentParser's generate-manual plugin), example configs, the systemd units and the sysusers.d entry for the
# `grid` user. `make uninstall` with the same PREFIX and DESTDIR removes exactly those files (configs you edited
# in $(SYSCONFDIR) are left alone). Units are written with the install's paths; nothing is enabled or started.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/sutra-grid-events
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL_CONFIG ?= release
INSTALL_SKIP_BUILD ?=
INSTALL_PRODUCTS := grid-eventd grid-master grid-agent grid-cli segdump
UNITS := grid-eventd grid-master grid-agent
INSTALL ?= install
MAN_OUT := .build/man

version:
	@sed -n 's/.*static let current = "\(.*\)"/\1/p' Sources/GridVersion/GridVersion.swift

install-build:
ifeq ($(INSTALL_SKIP_BUILD),)
	@for p in $(INSTALL_PRODUCTS); do $(SWIFT) build -c $(INSTALL_CONFIG) --product $$p || exit 1; done
endif

# One page per command and subcommand (grid-cli.1, grid-cli.follow.1, ...), from each executable's own help, by
# ArgumentParser's generate-manual plugin (it builds the package in $(INSTALL_CONFIG) and writes every executable's
# pages under .build/plugins/GenerateManual/outputs; the installed executables' pages are gathered in $(MAN_OUT)).
man: install-build
	$(SWIFT) package --disable-sandbox --allow-writing-to-package-directory generate-manual \
		--configuration $(INSTALL_CONFIG) --multi-page >/dev/null
	@rm -rf $(MAN_OUT) && mkdir -p $(MAN_OUT)
	@for p in $(INSTALL_PRODUCTS); do \
		pages=$$(find .build/plugins/GenerateManual/outputs/$$p -name '*.1' ! -name '*.help.1'); \
		[ -n "$$pages" ] || { echo "no man page made for $$p"; exit 1; }; \
		cp $$pages $(MAN_OUT)/ || exit 1; \
	done
	@ls $(MAN_OUT) | wc -l | xargs echo "man pages:"

install: man
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(DOCDIR)" \
		"$(DESTDIR)$(SYSCONFDIR)/sutra-grid" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSUSERSDIR)"
	@bin=$$($(SWIFT) build -c $(INSTALL_CONFIG) --show-bin-path); \
	for p in $(INSTALL_PRODUCTS); do $(INSTALL) -m 0755 "$$bin/$$p" "$(DESTDIR)$(BINDIR)/$$p" || exit 1; done
	$(INSTALL) -m 0644 $(MAN_OUT)/*.1 "$(DESTDIR)$(MANDIR)/man1/"
	$(INSTALL) -m 0644 LICENSE README.md docs/FORMAT.md "$(DESTDIR)$(DOCDIR)/"
	$(INSTALL) -m 0644 agent-config.example.toml packaging/grid-eventd.conf.example "$(DESTDIR)$(DOCDIR)/"
	@# Configs: examples always; the live files only when absent (an edited config is never overwritten).
	$(INSTALL) -m 0644 agent-config.example.toml "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/agent-config.toml.example"
	$(INSTALL) -m 0644 packaging/grid-eventd.conf.example "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/grid-eventd.conf.example"
	@[ -e "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/grid-eventd.conf" ] || \
		$(INSTALL) -m 0644 packaging/grid-eventd.conf.example "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/grid-eventd.conf"
	@[ -e "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/agent-config.toml" ] || \
		sed -e 's|^node_binary = .*|node_binary = "$(BINDIR)/grid-eventd"|' -e 's|^storage_root = .*|storage_root = "/var/lib/grid-agent/nodes"|' \
		agent-config.example.toml > "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/agent-config.toml"
	@for u in $(UNITS); do \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' packaging/systemd/$$u.service.in \
			> "$(DESTDIR)$(UNITDIR)/$$u.service" && chmod 0644 "$(DESTDIR)$(UNITDIR)/$$u.service" || exit 1; \
	done
	$(INSTALL) -m 0644 packaging/systemd/sutra-grid.sysusers.conf "$(DESTDIR)$(SYSUSERSDIR)/sutra-grid.conf"
	@echo "installed sutra-grid-events $$($(MAKE) --no-print-directory version) under $(DESTDIR)$(PREFIX)"

uninstall:
	for p in $(INSTALL_PRODUCTS); do rm -f "$(DESTDIR)$(BINDIR)/$$p"; done
	rm -f "$(DESTDIR)$(MANDIR)/man1/"grid-eventd*.1 "$(DESTDIR)$(MANDIR)/man1/"grid-master*.1 \
		"$(DESTDIR)$(MANDIR)/man1/"grid-agent*.1 "$(DESTDIR)$(MANDIR)/man1/"grid-cli*.1 "$(DESTDIR)$(MANDIR)/man1/"segdump*.1
	rm -rf "$(DESTDIR)$(DOCDIR)"
	for u in $(UNITS); do rm -f "$(DESTDIR)$(UNITDIR)/$$u.service"; done
	rm -f "$(DESTDIR)$(SYSUSERSDIR)/sutra-grid.conf"
	rm -f "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/"*.example
	@# The live configs stay when they were edited; unchanged copies of the examples go.
	@cmp -s packaging/grid-eventd.conf.example "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/grid-eventd.conf" && \
		rm -f "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/grid-eventd.conf" || true
	@sed -e 's|^node_binary = .*|node_binary = "$(BINDIR)/grid-eventd"|' -e 's|^storage_root = .*|storage_root = "/var/lib/grid-agent/nodes"|' \
		agent-config.example.toml | cmp -s - "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/agent-config.toml" && \
		rm -f "$(DESTDIR)$(SYSCONFDIR)/sutra-grid/agent-config.toml" || true
	@rmdir "$(DESTDIR)$(SYSCONFDIR)/sutra-grid" 2>/dev/null || true

# Installs into a temporary DESTDIR and checks the result end to end: every file in place, the installed grid-cli
# reports this tree's version, the units are Type=notify with their sandboxing and pass `systemd-analyze verify`
# (when present; only the ExecStart paths, absent outside DESTDIR, are forgiven), then uninstalls and checks that
# nothing is left but an edited config. INSTALL_CONFIG=debug INSTALL_SKIP_BUILD=1 reuses a debug build.
install-check:
	@stage=$$(mktemp -d /tmp/sgev-install-XXXXXX); trap 'rm -rf "$$stage"' EXIT; root="$$stage$(PREFIX)"; \
	$(MAKE) --no-print-directory install DESTDIR="$$stage" >/dev/null 2>&1 || { echo "make install failed"; exit 1; }; \
	for f in $(addprefix bin/,$(INSTALL_PRODUCTS)) share/man/man1/grid-cli.1 share/man/man1/grid-cli.follow.1 \
		share/man/man1/grid-eventd.1 share/man/man1/grid-master.1 share/man/man1/grid-agent.1 share/man/man1/segdump.1 \
		share/doc/sutra-grid-events/LICENSE lib/sysusers.d/sutra-grid.conf \
		$(addprefix lib/systemd/system/,$(addsuffix .service,$(UNITS))); do \
		[ -e "$$root/$$f" ] || { echo "missing $$f"; exit 1; }; \
	done; \
	[ -e "$$stage$(SYSCONFDIR)/sutra-grid/grid-eventd.conf" ] || { echo "missing grid-eventd.conf"; exit 1; }; \
	v=$$("$$root/bin/grid-cli" --version); [ "$$v" = "$$($(MAKE) --no-print-directory version)" ] || { echo "version $$v"; exit 1; }; \
	for u in $(UNITS); do f="$$root/lib/systemd/system/$$u.service"; \
		for k in Type=notify ProtectSystem=strict NoNewPrivileges=yes StateDirectory= "ExecStart=$(BINDIR)/$$u "; do \
			grep -q "^$$k" "$$f" || { echo "$$u.service lacks $$k"; exit 1; }; \
		done; \
		! grep -q @BINDIR@ "$$f" || { echo "$$u.service: @BINDIR@ not filled in"; exit 1; }; \
	done; \
	if command -v systemd-analyze >/dev/null; then \
		out=$$(systemd-analyze verify --man=no "$$root"/lib/systemd/system/*.service 2>&1 | grep -v 'is not executable'); \
		[ -z "$$out" ] || { echo "systemd-analyze verify: $$out"; exit 1; }; \
	fi; \
	n=$$(find "$$stage" -type f | wc -l); \
	echo "# edited" >> "$$stage$(SYSCONFDIR)/sutra-grid/grid-eventd.conf"; \
	$(MAKE) --no-print-directory uninstall DESTDIR="$$stage" >/dev/null || { echo "make uninstall failed"; exit 1; }; \
	left=$$(find "$$stage" -type f); \
	[ "$$left" = "$$stage$(SYSCONFDIR)/sutra-grid/grid-eventd.conf" ] || { echo "left after uninstall: $$left"; exit 1; }; \
	echo "install-check: $$n files installed under $(PREFIX) (units verified), all removed by uninstall but the edited config"
