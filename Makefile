# xprocess: build, run and test the Redis module.
#
# `make` (or `make help`) lists the targets. Every target that has a `## comment`
# on its rule line shows up in the help.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
REDIS_SERVER ?= redis-server

# `make run` settings: the server listens on 127.0.0.1:$(PORT) and keeps its
# AOF under $(RUN_DIR)/data, so data survives restarts until `make clean`.
PORT ?= 6379
RUN_DIR := $(CURDIR)/target/run
RUN_CONF := $(RUN_DIR)/redis.conf
RELEASE_MODULE := $(CURDIR)/target/release/libxprocess.so
DEBUG_MODULE := $(CURDIR)/target/debug/libxprocess.so

# Extra arguments for `cargo test`, e.g. `make test TEST_ARGS='--test command'`.
# --no-fail-fast: every test binary runs and all failures are listed; any
# failure still fails `make test`.
TEST_ARGS ?=
# Set NO_DEPS=1 to skip the package check/installation in `make deps`.
NO_DEPS ?=
# `make test` runs the whole suite once per server of TEST_SERVERS. A name of
# SERVERS is a folder target/servers/<name>/ made by scripts/install-servers.sh
# (Redis 7.0 and Valkey 8.0 from Debian 12 and its backports, Redis 8.0 and
# Valkey 9.1 from Debian unstable and Redis 8.6 from Debian experimental, each
# in a private prefix); any other name is a
# server binary on PATH, e.g. `make test TEST_SERVERS=/opt/redis/bin/redis-server`.
# A server that cannot be installed fails `make test` when CI is set, and is
# skipped with a warning otherwise.
SERVERS := redis-7.0 valkey-8.0 redis-8.0 redis-8.6 valkey-9.1
TEST_SERVERS ?= $(SERVERS)
SERVERS_DIR := $(CURDIR)/target/servers

# Debian packages needed to build (bindgen needs libclang, cc links) and to run
# the module and its tests (redis-server).
DEB_PACKAGES := redis-server libclang-dev clang build-essential

.PHONY: help build debug run test lint fmt clean deps servers examples-deps chaos bench bench-deps tax fuzz fuzz-lib fuzz-smoke failover

help: ## Show this help (the default goal)
	@echo "xprocess: exactly-once Redis Streams processing as one command (Redis module)"
	@echo
	@echo "Usage: make <target> [PORT=6379] [TEST_ARGS=...] [NO_DEPS=1]"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

deps: ## Install missing Debian packages (redis-server, libclang-dev, clang, build-essential) via apt-get
	@if [ -n "$(NO_DEPS)" ]; then echo "deps: NO_DEPS set, skipping package check"; exit 0; fi; \
	if ! command -v $(CARGO) >/dev/null 2>&1; then \
		echo "deps: '$(CARGO)' not found. Install Rust with rustup: https://rustup.rs" >&2; exit 1; \
	fi; \
	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then \
		missing=""; \
		command -v $(REDIS_SERVER) >/dev/null 2>&1 || missing="$$missing redis-server"; \
		command -v cc >/dev/null 2>&1 || missing="$$missing a-C-compiler(cc)"; \
		if [ -z "$${LIBCLANG_PATH:-}" ] && ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib*/libclang*.so* \
			/usr/lib/*/libclang*.so* /usr/local/lib/libclang*.so* /opt/homebrew/opt/llvm/lib/libclang* \
			/usr/local/opt/llvm/lib/libclang* >/dev/null 2>&1; then missing="$$missing libclang"; fi; \
		if [ -n "$$missing" ]; then \
			echo "deps: not a Debian system, install these yourself:$$missing" >&2; \
			echo "deps: (set LIBCLANG_PATH if libclang is installed somewhere unusual)" >&2; \
		fi; \
		exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "deps: missing packages:$$missing; not root and no sudo, install them yourself" >&2; exit 1; fi; \
	echo "deps: installing missing packages:$$missing"; \
	set -x; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

build: deps ## Build the release module: target/release/libxprocess.so
	$(CARGO) build --release
	@echo "built $(RELEASE_MODULE)"

debug: deps ## Build the debug module: target/debug/libxprocess.so
	$(CARGO) build

run: build ## Build, then run redis-server with the module on 127.0.0.1:6379 (PORT=...) in the foreground, config redis.conf.example
	@if (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; then \
		echo "run: something already listens on 127.0.0.1:$(PORT) (a system redis-server? try" >&2; \
		echo "     'systemctl stop redis-server' or 'service redis-server stop'), or use 'make run PORT=6380'" >&2; \
		exit 1; \
	fi
	@mkdir -p $(RUN_DIR)/data
	@# Same file as redis.conf.example, with the module path made absolute:
	@# redis-server resolves a relative loadmodule path against its `dir`.
	@sed -e 's|^loadmodule[[:space:]].*|loadmodule $(RELEASE_MODULE)|' redis.conf.example > $(RUN_CONF)
	@grep -q '^loadmodule $(RELEASE_MODULE)$$' $(RUN_CONF) || { echo "run: no loadmodule line in redis.conf.example" >&2; exit 1; }
	@echo "run: starting redis-server with $(RUN_CONF) (from redis.conf.example), data in $(RUN_DIR)/data"
	@echo "run: connect with 'redis-cli -p $(PORT)', stop with Ctrl-C"
	cd $(RUN_DIR) && exec $(REDIS_SERVER) $(RUN_CONF) --port $(PORT) --dir $(RUN_DIR)/data

servers: ## Install the servers of TEST_SERVERS into target/servers (scripts/install-servers.sh)
	@names="$(filter $(SERVERS),$(TEST_SERVERS))"; \
	if [ -z "$$names" ]; then exit 0; fi; \
	if [ -n "$${CI:-}" ]; then allow=""; else allow=1; fi; \
	ALLOW_MISSING=$$allow bash scripts/install-servers.sh $$names

test: deps servers examples-deps fuzz-smoke ## Build the debug module, then run all tests once per server: Redis 7.0, 8.0 and 8.6, Valkey 8.0 and 9.1 (what CI runs)
	$(CARGO) build
	@results=""; passed=0; failed=0; \
	for s in $(TEST_SERVERS); do \
		if [ -d "$(SERVERS_DIR)/$$s" ]; then \
			dir="$(SERVERS_DIR)/$$s"; bin="$$dir/$${s%-*}-server"; cli="$$dir/$${s%-*}-cli"; \
		elif command -v "$$s" >/dev/null 2>&1; then \
			bin="$$(command -v "$$s")"; dir="$$(dirname "$$bin")"; cli="$${bin%-server}-cli"; \
			[ -x "$$cli" ] || cli="$$(command -v redis-cli || echo redis-cli)"; \
		else bin=""; fi; \
		if [ -z "$$bin" ] || ! version="$$("$$bin" --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p')" || [ -z "$$version" ]; then \
			if [ -n "$${CI:-}" ]; then echo "test: $$s is not installed: FAILED" >&2; results="$$results $$s:not-installed"; failed=$$((failed + 1)); \
			else echo; echo "test: WARNING: $$s is not installed: SKIPPED (make servers)" >&2; results="$$results $$s:skipped"; fi; \
			continue; \
		fi; \
		printf '\n==> test on %s (%s)\n' "$$s" "$$("$$bin" --version)"; \
		echo "+ PATH=$$dir:\$$PATH REDIS_SERVER=$$bin REDIS_CLI=$$cli $(CARGO) test --workspace --no-fail-fast $(TEST_ARGS)"; \
		if PATH="$$dir:$$PATH" REDIS_SERVER="$$bin" REDIS_CLI="$$cli" $(CARGO) test --workspace --no-fail-fast $(TEST_ARGS); then \
			results="$$results $$s($$version):passed"; passed=$$((passed + 1)); \
		else results="$$results $$s($$version):FAILED"; failed=$$((failed + 1)); fi; \
	done; \
	echo; echo "test: per server:$$results"; \
	echo "servers: $$passed passed, $$failed failed"; \
	[ "$$passed" -gt 0 ] && [ "$$failed" -eq 0 ]

EXAMPLES_VENV := $(CURDIR)/target/examples/venv

examples-deps: ## Install the example workers' dependencies: redis-py (target/examples/venv), ioredis (examples/node/node_modules), the Rust worker's crates
	@if command -v python3 >/dev/null 2>&1; then \
		if [ ! -f $(EXAMPLES_VENV)/.installed ] || [ examples/python/requirements.txt -nt $(EXAMPLES_VENV)/.installed ]; then \
			set -x; \
			python3 -m venv $(EXAMPLES_VENV); \
			$(EXAMPLES_VENV)/bin/pip install --quiet --disable-pip-version-check -r examples/python/requirements.txt; \
			touch $(EXAMPLES_VENV)/.installed; \
		fi; \
	else echo "examples-deps: no python3: the Python example's tests will be skipped"; fi
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		if [ ! -f examples/node/node_modules/.package-lock.json ] || [ examples/node/package-lock.json -nt examples/node/node_modules/.package-lock.json ]; then \
			set -x; npm ci --prefix examples/node --no-audit --no-fund; \
		fi; \
	else echo "examples-deps: no node/npm: the Node.js example's tests will be skipped"; fi
	$(CARGO) build --locked --manifest-path examples/rust/Cargo.toml --target-dir target/examples/rust

lint: ## Check formatting (cargo fmt --check) and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code with cargo fmt
	$(CARGO) fmt --all

clean: ## Remove build artifacts and the `make run` data (target/)
	$(CARGO) clean

# `make chaos` sizes; CHAOS_SEED=n repeats a run's random choices.
# CHAOS_ONLY=word runs only the chaos tests whose name has it (e.g. `effects`:
# the mode with templated keys, WHEN conditions and a mix of effects;
# `fcall`: the mode whose one effect is a Redis Function, with DEADLETTER
# for the entries it refuses; `standing`: no workers, a standing processor
# (XPROCESS.DEFINE and XPROCESS.START once) resuming from the AOF by itself).
CHAOS_ENTRIES ?= 10000
CHAOS_KILLS ?= 30
CHAOS_SEED ?=
CHAOS_ONLY ?=

chaos: deps ## Chaos run: 10,000 entries, 30 kill -9 + AOF restarts, crashing consumers, per mode: XPROCESS (IDS on the index and on a Set, KEY, READ with poison entries, templated keys + WHEN + a mix of effects, an FCALL effect with DEADLETTER, a standing processor with no workers) vs the naive pattern (CHAOS_ONLY=effects, fcall or standing: that mode alone)
	$(CARGO) build
	CHAOS_ENTRIES=$(CHAOS_ENTRIES) CHAOS_KILLS=$(CHAOS_KILLS) CHAOS_SEED=$(CHAOS_SEED) $(CARGO) test --test chaos -- --nocapture $(CHAOS_ONLY)

FUZZ_CASES ?= 100000
FAILOVER_ROUNDS ?= 10

fuzz: deps ## Live fuzzer: 100,000 random and mutated XPROCESS calls against a server (FUZZ_CASES, FUZZ_SEED)
	$(CARGO) build
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --test fuzz_live -- --nocapture

FUZZ_SECONDS ?= 300

# The fuzz targets build against the core crate alone; `make test` builds
# them and runs each briefly (no coverage instrumentation: a smoke run that
# keeps them compiling and their oracles holding on the seeds).
FUZZ_TARGETS := parse_plan index_ops key_store

fuzz-smoke: ## Build the libFuzzer targets (against the core crate) and run each for 5,000 inputs
	$(CARGO) build --manifest-path fuzz/Cargo.toml --bins
	@for t in $(FUZZ_TARGETS); do \
		seeds=""; [ -d fuzz/seeds/$$t ] && seeds=fuzz/seeds/$$t; \
		echo "+ fuzz/target/debug/$$t -runs=5000 $$seeds"; \
		fuzz/target/debug/$$t -runs=5000 $$seeds 2>&1 | tail -n 3; \
	done

fuzz-lib: ## libFuzzer for FUZZ_SECONDS (300) each: parsing/templates/planning, the dedupe index (RDB decoder, operations, patches), the business-key store (installs cargo-fuzz)
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/parse_plan fuzz/corpus/index_ops fuzz/corpus/key_store
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run parse_plan corpus/parse_plan seeds/parse_plan -- -dict=parse_plan.dict -max_total_time=$(FUZZ_SECONDS) -max_len=512
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run index_ops corpus/index_ops -- -max_total_time=$(FUZZ_SECONDS) -max_len=1024
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run key_store corpus/key_store -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096

failover: deps ## Failover runs: kill -9 the primary under load, promote the replica, check exactly-once (FAILOVER_ROUNDS)
	$(CARGO) build
	FAILOVER_ROUNDS=$(FAILOVER_ROUNDS) $(CARGO) test --test failover -- --nocapture

# `make bench` runs `cargo bench --bench xprocess`: the per-entry tables,
# the consumer loops (raw RESP client), the pipelines (a producer and a
# consumer at once) and the same consumer loops run by redis-py
# (benches/python/consumer_loop.py, with the venv `make bench-deps` makes in
# target/bench/venv; without python3 those rows are skipped with a note in
# the report).
# `make bench` then counts the instructions per entry of the consumer loops,
# the pipelines and xprocess1, xprocess10, xprocess100, lua and naive under
# callgrind (scripts/bench-callgrind.sh loops; the redis-py loops send the
# same requests as the raw client's) and writes their table, with ratios to
# the floors and to Lua and naive, into BENCHMARKS.md (or BENCH_OUT):
# without BENCH_ONLY, or when BENCH_ONLY names `loops`, which is no tag of
# `cargo bench` (BENCH_ONLY=loops alone skips the timed run); BENCH_ONLY
# naming some of its tags (LOOP_TAGS) only prints them.
# Then the instructions per entry of the newer effects
# (HSET, INCRBY, ZINCRBY at 100 IDs per call against the Lua script and the
# bare command) under callgrind: scripts/bench-callgrind.sh effects, on
# $(REDIS_SERVER) (the binary itself: valgrind does not follow the exec of
# the target/servers wrappers), BENCH_CALLGRIND_N entries per phase. Its
# table is written into BENCHMARKS.md (or BENCH_OUT) when all of its rows
# are measured: without BENCH_ONLY, or when BENCH_ONLY names `effects`;
# BENCH_ONLY naming some of its tags (hset100, hset-lua, hset-native, the
# same for incrby and zincrby, noeffect100) only prints them; naming none
# skips it. Then, the same way, the FCALL table: a Redis Function (running
# maximum and count per customer) as XPROCESS' FCALL effect at 1 and 100
# IDs per call against the same logic inline in the Lua script and the bare
# FCALL (scripts/bench-callgrind.sh fcall; BENCH_ONLY `fcall` writes it,
# fcall1, fcall100, fcall-lua, fcall-native only print).
BENCH_ONLY ?=
BENCH_CALLGRIND_N ?= 5000
EFFECT_TAGS := $(foreach e,hset incrby zincrby,$(e)100 $(e)-lua $(e)-native) noeffect100
FCALL_TAGS := fcall1 fcall100 fcall-lua fcall-native
LOOP_TAGS := loop-lua loop-ids loop-read loop-read-counts loop-ack loop-standing \
	pipe-ack pipe-read pipe-standing xprocess1 xprocess10 xprocess100 lua naive
# BENCH_ONLY without `loops`, which only the callgrind part knows: the
# cargo bench run is skipped when nothing else is left.
comma := ,
empty :=
space := $(empty) $(empty)
BENCH_MAIN_ONLY := $(subst $(space),$(comma),$(strip $(filter-out loops,$(subst $(comma),$(space),$(BENCH_ONLY)))))

BENCH_VENV := $(CURDIR)/target/bench/venv

# python3 and python3-venv (Debian's python3 has no venv module without it)
# join the packages `make deps` installs, for these targets only.
bench-deps: DEB_PACKAGES += python3 python3-venv
bench-deps: deps ## Install redis-py for the benchmark's redis-py consumer loops (target/bench/venv); no python3: they are skipped
	@if ! command -v python3 >/dev/null 2>&1; then \
		echo "bench-deps: no python3: the redis-py loops of make bench will be skipped"; exit 0; \
	fi; \
	if [ ! -f $(BENCH_VENV)/.installed ] || [ benches/python/requirements.txt -nt $(BENCH_VENV)/.installed ]; then \
		set -x; \
		python3 -m venv $(BENCH_VENV); \
		$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r benches/python/requirements.txt; \
		touch $(BENCH_VENV)/.installed; \
	fi

# valgrind (and bench-deps' python3, python3-venv) join the packages
# `make deps` installs, for this target only.
bench: DEB_PACKAGES += valgrind python3 python3-venv
bench: build bench-deps ## Benchmark XPROCESS vs the Lua script, the naive pipeline and bare XACK, the whole consumer loop (READ, READ REPLY COUNTS, IDS, Lua, XACK floor, standing processor), the pipeline (producer and consumer at once), the consumer loop with redis-py, and, under callgrind, instructions per entry of the loops, pipelines and per-entry contenders, of HSET, INCRBY and ZINCRBY vs Lua and of an FCALL effect vs the same logic in Lua; writes BENCHMARKS.md (BENCH_N, BENCH_LOOP_N, BENCH_PIPE_N, BENCH_PY_N, BENCH_ROUNDS, BENCH_ONLY, BENCH_CALLGRIND_N)
	@if [ -n "$(BENCH_ONLY)" ] && [ -z "$(BENCH_MAIN_ONLY)" ]; then \
		echo "bench: BENCH_ONLY names only loops: no cargo bench run, the callgrind part alone"; \
	else \
		echo "+ $(if $(BENCH_ONLY),BENCH_ONLY='$(BENCH_MAIN_ONLY)' )$(CARGO) bench --bench xprocess"; \
		$(if $(BENCH_ONLY),BENCH_ONLY='$(BENCH_MAIN_ONLY)') $(CARGO) bench --bench xprocess; \
	fi
	@only=",$$(echo '$(BENCH_ONLY)' | tr -d ' '),"; tags=""; \
	for t in $(LOOP_TAGS); do [[ "$$only" == *",$$t,"* ]] && tags="$$tags,$$t"; done; \
	if [ -z "$(BENCH_ONLY)" ] || [[ "$$only" == *,loops,* ]]; then \
		out="$${BENCH_OUT:-$(CURDIR)/BENCHMARKS.md}"; \
		echo "+ LOOPS_OUT=$$out REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh loops"; \
		LOOPS_OUT="$$out" REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh loops; \
	elif [ -n "$$tags" ]; then \
		echo "+ REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh $${tags#,}"; \
		REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh "$${tags#,}"; \
	fi
	@only=",$$(echo '$(BENCH_ONLY)' | tr -d ' '),"; tags=""; \
	for t in $(EFFECT_TAGS); do [[ "$$only" == *",$$t,"* ]] && tags="$$tags,$$t"; done; \
	if [ -z "$(BENCH_ONLY)" ] || [[ "$$only" == *,effects,* ]]; then \
		out="$${BENCH_OUT:-$(CURDIR)/BENCHMARKS.md}"; \
		echo "+ EFFECTS_OUT=$$out REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh effects"; \
		EFFECTS_OUT="$$out" REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh effects; \
	elif [ -n "$$tags" ]; then \
		echo "+ REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh $${tags#,}"; \
		REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh "$${tags#,}"; \
	fi
	@only=",$$(echo '$(BENCH_ONLY)' | tr -d ' '),"; tags=""; \
	for t in $(FCALL_TAGS); do [[ "$$only" == *",$$t,"* ]] && tags="$$tags,$$t"; done; \
	if [ -z "$(BENCH_ONLY)" ] || [[ "$$only" == *,fcall,* ]]; then \
		out="$${BENCH_OUT:-$(CURDIR)/BENCHMARKS.md}"; \
		echo "+ FCALL_OUT=$$out REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh fcall"; \
		FCALL_OUT="$$out" REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh fcall; \
	elif [ -n "$$tags" ]; then \
		echo "+ REDIS_SERVER=$(REDIS_SERVER) N=$(BENCH_CALLGRIND_N) scripts/bench-callgrind.sh $${tags#,}"; \
		REDIS_SERVER="$(REDIS_SERVER)" N=$(BENCH_CALLGRIND_N) bash scripts/bench-callgrind.sh "$${tags#,}"; \
	fi

# `make tax`: the servers to measure (names of SERVERS, or server binaries)
# the commands per run, and per round trip (pipeline depth).
TAX_SERVERS ?= redis-7.0
TAX_N ?= 20000
TAX_P ?= 16

# valgrind joins the packages `make deps` installs, for this target only.
tax: DEB_PACKAGES += valgrind
tax: build ## The module's tax on other commands (SET, GET, DEL, XADD, ...): instructions per command under callgrind, without and with the module, per hook; writes its section of BENCHMARKS.md (TAX_SERVERS, TAX_N, TAX_P)
	@names="$(filter $(SERVERS),$(TAX_SERVERS))"; \
	if [ -n "$$names" ]; then ALLOW_MISSING=1 bash scripts/install-servers.sh $$names; fi
	TAX_N=$(TAX_N) TAX_P=$(TAX_P) bash scripts/tax.sh $(TAX_SERVERS)

