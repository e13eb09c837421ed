# Makefile: builds cetcd (server, protobuf code, unit tests) and runs it: `make run`, `make check`,
# `make bench`. Missing system packages are installed by scripts/install-deps.sh on first build.
CC ?= cc
BUILD := build
GEN := $(BUILD)/gen
WARN := -Wall -Wextra -Werror
CSTD := -std=c11 -D_GNU_SOURCE
OPT ?= -O2 -g1
# each function and object in a section of its own, so that the server's link drops what nothing uses
# (--gc-sections: mostly protoc-c's generated helpers; 909 -> 805 kB with the static libraries below)
SECTIONS := -ffunction-sections -fdata-sections
SAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# libev and protobuf-c are linked statically (their -dev packages ship the .a), and xxhash is compiled
# from its header (storage/xxh3.c): the little of them the server runs sits in its own text instead of
# three more mappings, each with its relocations and data pages (idle RSS, issue 16). nghttp2 stays
# shared: statically it would add ~150 kB to the binary (all of its 89 kB of text is in objects the
# server needs) for ~80 KiB less idle RSS (its own mapping's headers, relocated data and rodata).
LIBS := -Wl,-Bstatic -lev -lprotobuf-c -Wl,-Bdynamic -lnghttp2 -pthread
# no -lssl -lcrypto: src/net/tls_lib.c opens OpenSSL with dlopen when TLS flags are given; no -lyaml:
# src/base/yaml_lib.c opens libyaml for --config-file; no -lcrypt: src/api/auth_hash.c opens
# libxcrypt for the first password hash (idle RSS)
CHECK_LIBS = $(shell pkg-config --libs check)

PROTOS := proto/kv.proto proto/auth.proto proto/rpc.proto proto/lease.proto proto/v3lock.proto \
	proto/v3election.proto
GEN_C := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all run check layers unit unit-asan integration integration-asan bench crash-soak format clean deps \
	fuzz fuzz-smoke fuzz-run install uninstall
# generated sources are kept (not removed as intermediates), so nothing is rebuilt for no reason
.SECONDARY: $(GEN_C) $(GEN_H)
all: $(BUILD)/cetcd $(BUILD)/cetcd.1

deps: $(DEPS_OK)
$(DEPS_OK):
	@mkdir -p $(BUILD)
	@scripts/check-deps.sh || scripts/install-deps.sh
	@touch $@

# --- generated protobuf code (never committed) ---
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto | $(DEPS_OK)
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

# --- layers (docs/architecture.md, "Layers"): base <- storage <- rpc <- api, watch <- gateway <- net <-
# main. A layer is compiled with the include paths of itself and of the layers it may use, so an
# include of a layer above does not compile; scripts/check-layers.sh (make layers) checks the same table
# and, which -I cannot, that src/ includes only storage's public headers. The generated protobuf code
# sits at rpc: only rpc and above see $(GEN).
INC_base := -Isrc/base
INC_storage := -Istorage $(INC_base)
INC_rpc := -Isrc/rpc -I$(GEN) $(INC_storage)
INC_api := -Isrc/api $(INC_rpc)
INC_watch := -Isrc/watch $(INC_rpc)
INC_gateway := -Isrc/gateway -Isrc/api -Isrc/watch $(INC_rpc)
INC_net := -Isrc/net $(INC_gateway)
INC_main := $(INC_net)

SRC_LAYERS := base rpc api watch gateway net
STORAGE_C := $(wildcard storage/*.c)
$(foreach L,$(SRC_LAYERS),$(eval C_$(L) := $(wildcard src/$(L)/*.c)))
C_main := src/main.c

# objects: release in $(BUILD)/obj, ASan+UBSan in $(BUILD)/asan; a layer's objects get its INC
objects = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))
O_storage := $(call objects,obj,$(STORAGE_C))
A_storage := $(call objects,asan,$(STORAGE_C))
$(O_storage) $(A_storage): INC = $(INC_storage)
$(foreach L,$(SRC_LAYERS) main,$(eval O_$(L) := $(call objects,obj,$(C_$(L)))) \
	$(eval A_$(L) := $(call objects,asan,$(C_$(L)))) \
	$(eval $(O_$(L)) $(A_$(L)): INC = $(INC_$(L))))
# the layers that see the generated headers wait for them; base and storage need nothing generated
$(foreach L,rpc api watch gateway net main,$(eval $(O_$(L)) $(A_$(L)): $(GEN_H)))
# a source in no layer does not compile
INC = $(error $<: in no layer; see INC_* in the Makefile)
O_gen := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
A_gen := $(patsubst $(GEN)/%.c,$(BUILD)/asan/gen/%.o,$(GEN_C))

# The release objects and link depend on the flags they were built with, written to FLAGS_STAMP only
# when they change: an object compiled with other flags is rebuilt, not linked with new ones into a
# binary that matches neither (as happened to a benchmark run after OPT changed).
FLAGS_STAMP := $(BUILD)/obj/.flags
FLAGS_NOW := $(CC) $(CSTD) $(WARN) $(OPT) $(SECTIONS) $(LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@
.PHONY: FORCE
$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(INC) $(WARN) $(OPT) $(SECTIONS) -MMD -MP -c $< -o $@
$(BUILD)/asan/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(INC) $(WARN) $(SAN) -MMD -MP -c $< -o $@
# generated code is protoc-c's, compiled without -Werror
$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_H) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -I$(GEN) $(OPT) $(SECTIONS) -c $< -o $@
$(BUILD)/asan/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -I$(GEN) $(SAN) -c $< -o $@

# one archive per layer (gen is its own); storage's is the library storage/ is built as
ARCHIVES := base storage gen $(filter-out base,$(SRC_LAYERS))
define archive
$(BUILD)/lib$(1).a: $(O_$(1))
	@rm -f $$@
	ar rcs $$@ $$^
$(BUILD)/lib$(1)-asan.a: $(A_$(1))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach L,$(ARCHIVES),$(eval $(call archive,$(L))))

# the server: every object of src/ (metrics.c registers its counters from a constructor, so none may
# be left out as an unreferenced archive member would be), libstorage.a and the generated code
SERVER_LAYERS := base rpc api watch gateway net
# line tables kept for crash traces, compressed so the binary stays under 1 MB; unused sections dropped;
# relative relocations packed (DT_RELR: 2.6k entries in 1 kB instead of 62 kB read at every start); the
# functions an idle server runs first in .text, so that the kernel maps those pages and not the whole text
# (idle RSS: scripts/idle-text.sh, which also makes the list, scripts/idle-text.list)
LINK_SERVER := $(OPT) -Wl,--compress-debug-sections=zlib -Wl,--gc-sections -Wl,-z,pack-relative-relocs
$(BUILD)/cetcd.ld: scripts/idle-text.list scripts/idle-text.sh | $(DEPS_OK)
	scripts/idle-text.sh ldscript $< $(CC) $(LINK_SERVER) > $@.tmp && mv $@.tmp $@
$(BUILD)/cetcd: $(O_main) $(foreach L,$(SERVER_LAYERS),$(O_$(L))) $(O_gen) $(BUILD)/libstorage.a $(BUILD)/cetcd.ld \
	$(FLAGS_STAMP)
	$(CC) $(LINK_SERVER) -Wl,-T,$(BUILD)/cetcd.ld -o $@ $(filter-out %.ld $(FLAGS_STAMP),$^) $(LIBS)
# the man page, from the binary's own -h (scripts/gen-man.sh)
$(BUILD)/cetcd.1: $(BUILD)/cetcd scripts/gen-man.sh
	scripts/gen-man.sh $(BUILD)/cetcd > $@.tmp && mv $@.tmp $@

# make install [PREFIX=/usr/local] [DESTDIR=]: the server and its man page (the systemd unit and the
# Docker image are in scripts/ and Dockerfile; README.md, "Installing")
PREFIX ?= /usr/local
BINDIR = $(DESTDIR)$(PREFIX)/bin
MAN1DIR = $(DESTDIR)$(PREFIX)/share/man/man1
install: $(BUILD)/cetcd $(BUILD)/cetcd.1
	install -d $(BINDIR) $(MAN1DIR)
	install -m 0755 $(BUILD)/cetcd $(BINDIR)/cetcd
	install -m 0644 $(BUILD)/cetcd.1 $(MAN1DIR)/cetcd.1
uninstall:
	rm -f $(BINDIR)/cetcd $(MAN1DIR)/cetcd.1

$(BUILD)/cetcd-asan: $(A_main) $(foreach L,$(SERVER_LAYERS),$(A_$(L))) $(A_gen) $(BUILD)/libstorage-asan.a
	$(CC) $(SAN) -o $@ $^ $(LIBS)

# --- unit tests (Check): one binary per layer, $(BUILD)/unit-<layer>, linking its tests, the archive of
# that layer and those of the layers below it (so it links only what it uses, and nothing above).
# Every tests/unit/test_*.c defines `Suite *<name>_suite(void)` and is listed under one layer here.
UNIT_LAYERS := base storage rpc api watch gateway
UNIT_base := tests/unit/test_sha256.c
UNIT_storage := $(addprefix tests/unit/,test_bptree.c test_log.c test_mvcc.c test_history.c \
	test_compactor.c test_export.c test_disk_guard.c test_hash_kv.c test_replay_map.c test_range_select.c \
	test_keyhist.c test_log_roll.c test_rev_table.c) $(wildcard tests/unit/test_lifecycle*.c)
UNIT_rpc := tests/unit/test_commit.c tests/unit/test_auth_perm.c
UNIT_api := tests/unit/test_lease_timers.c tests/unit/test_bbolt.c tests/unit/test_auth_codec.c tests/unit/test_kv_wire.c
UNIT_watch := tests/unit/test_watch_index.c
UNIT_gateway := tests/unit/test_json.c tests/unit/test_pbjson.c
# helpers a layer's tests link besides the tests (test_lifecycle.c includes crashfs.c itself)
UNIT_HELPERS_storage := tests/unit/fixture.c
UNIT_HELPERS_rpc := tests/unit/fixture.c
# the archives each binary links, in link order (the layer first, then what it may use)
UNIT_LIBS_base := base
UNIT_LIBS_storage := storage base
UNIT_LIBS_rpc := rpc gen storage base
UNIT_LIBS_api := api rpc gen storage base
UNIT_LIBS_watch := watch rpc gen storage base
UNIT_LIBS_gateway := gateway api watch rpc gen storage base
# and the system libraries: storage's tests link neither libev nor nghttp2 nor protobuf-c
SYSLIBS_base := -pthread
SYSLIBS_storage := $(SYSLIBS_base)
SYSLIBS_rpc := -lev -lprotobuf-c $(SYSLIBS_storage)
SYSLIBS_api := $(SYSLIBS_rpc)
SYSLIBS_watch := $(SYSLIBS_rpc)
SYSLIBS_gateway := $(SYSLIBS_rpc)
UNIT_UNLISTED := $(filter-out $(foreach L,$(UNIT_LAYERS),$(UNIT_$(L))),$(wildcard tests/unit/test_*.c))
ifneq ($(UNIT_UNLISTED),)
$(error $(UNIT_UNLISTED): list each under one UNIT_<layer> in the Makefile)
endif
UNIT_BINS := $(foreach L,$(UNIT_LAYERS),$(BUILD)/unit-$(L))
UNIT_ASAN_BINS := $(foreach L,$(UNIT_LAYERS),$(BUILD)/unit-$(L)-asan)

# a binary's suites table, $(GEN)/unit-<layer>/suites.h, from its tests' `Suite *x_suite(void)`, and its
# own build of check_main.c that includes it
define unit_binary
$(GEN)/unit-$(1)/suites.h: $(UNIT_$(1)) | $(DEPS_OK)
	@mkdir -p $$(dir $$@)
	@sed -n 's/^Suite \*\([a-z0-9_]*_suite\)(void).*/SUITE(\1)/p' $(UNIT_$(1)) > $$@.tmp && mv $$@.tmp $$@
$(BUILD)/obj/tests/unit/check_main-$(1).o: tests/unit/check_main.c $(GEN)/unit-$(1)/suites.h
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CSTD) -I$(GEN)/unit-$(1) $$(WARN) $$(OPT) -MMD -MP -c $$< -o $$@
$(BUILD)/asan/tests/unit/check_main-$(1).o: tests/unit/check_main.c $(GEN)/unit-$(1)/suites.h
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CSTD) -I$(GEN)/unit-$(1) $$(WARN) $$(SAN) -MMD -MP -c $$< -o $$@
$(call objects,obj,$(UNIT_$(1))) $(call objects,asan,$(UNIT_$(1))): INC = $(INC_$(1)) -Itests/unit
$(BUILD)/unit-$(1): $(BUILD)/obj/tests/unit/check_main-$(1).o $(call objects,obj,$(UNIT_$(1)) \
		$(UNIT_HELPERS_$(1))) $(foreach A,$(UNIT_LIBS_$(1)),$(BUILD)/lib$(A).a)
	$$(CC) $$(OPT) -o $$@ $$^ $(SYSLIBS_$(1)) $$(CHECK_LIBS)
$(BUILD)/unit-$(1)-asan: $(BUILD)/asan/tests/unit/check_main-$(1).o $(call objects,asan,$(UNIT_$(1)) \
		$(UNIT_HELPERS_$(1))) $(foreach A,$(UNIT_LIBS_$(1)),$(BUILD)/lib$(A)-asan.a)
	$$(CC) $$(SAN) -o $$@ $$^ $(SYSLIBS_$(1)) $$(CHECK_LIBS)
endef
$(foreach L,$(UNIT_LAYERS),$(eval $(call unit_binary,$(L))))
# fixture.c serves the tests of storage and of rpc; it sees storage's headers only
$(call objects,obj,tests/unit/fixture.c) $(call objects,asan,tests/unit/fixture.c): INC = $(INC_storage) -Itests/unit
$(foreach L,rpc api watch gateway,$(eval $(call objects,obj,$(UNIT_$(L))) $(call objects,asan,$(UNIT_$(L))): $(GEN_H)))

# --- fuzzing (tests/fuzz/README.md): one libFuzzer target per decoder, built with clang under ASan and
# UBSan: make fuzz builds them in $(BUILD)/fuzz, make fuzz-smoke (part of make check) runs each over its
# seed corpus and then briefly, make fuzz-run T=<target> fuzzes one until stopped (FUZZ_ARGS adds
# libFuzzer flags, e.g. -max_total_time=3600; crashes go to tests/fuzz/crashes/). The sources of src/
# and storage/ are compiled again with clang and coverage instrumentation; -Werror is left out there,
# as clang warns of things gcc does not.
FUZZ_CC := clang
FUZZ_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := $(CSTD) -Wall -Wextra $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_TARGETS := h2 grpc rpc http1 log
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
FUZZ_RUNS ?= 5000
FUZZ_SECONDS ?= 10
FUZZ_OPTS := -max_len=65536 -timeout=20 -rss_limit_mb=2048 -close_fd_mask=2
# the server's objects but main.c (fuzz_server.c starts what main.c starts, and connects a socketpair)
FUZZ_SRC_C := $(foreach L,$(SRC_LAYERS),$(C_$(L)))
F_src := $(call objects,fuzz,$(FUZZ_SRC_C))
F_storage := $(call objects,fuzz,$(STORAGE_C))
F_gen := $(patsubst $(GEN)/%.c,$(BUILD)/fuzz/gen/%.o,$(GEN_C))
$(F_storage): INC = $(INC_storage)
$(foreach L,$(SRC_LAYERS),$(eval $(call objects,fuzz,$(C_$(L))): INC = $(INC_$(L))))
$(F_src): $(GEN_H)
F_harness := $(call objects,fuzz,tests/fuzz/fuzz_server.c)
$(F_harness): INC = $(INC_net) -Itests/fuzz -I$(BUILD)/fuzz
$(F_harness): $(GEN_H) $(BUILD)/fuzz/fz_methods.h
$(F_gen): $(GEN_H)
# the method table's paths, in its order: inputs name a method by its index
$(BUILD)/fuzz/fz_methods.h: src/net/methods.c
	@mkdir -p $(dir $@)
	sed -n 's/^ *{"\(\/[^"]*\)", RPC_.*/    "\1",/p' $< > $@.tmp && mv $@.tmp $@
$(call objects,fuzz,$(patsubst %,tests/fuzz/fuzz_%.c,h2 grpc rpc http1)): INC = $(INC_net) -Itests/fuzz \
	-I$(BUILD)/fuzz
# the JSON gateway's paths (its table, then the streaming ones), in order: fuzz_http1 numbers them
$(call objects,fuzz,tests/fuzz/fuzz_http1.c): $(BUILD)/fuzz/fz_routes.h
$(BUILD)/fuzz/fz_routes.h: src/gateway/http_api.c $(wildcard src/gateway/gw_stream.c)
	@mkdir -p $(dir $@)
	sed -n 's/^ *{"\(\/v3\/[^"]*\)".*/    "\1",/p' $^ > $@.tmp && mv $@.tmp $@
$(call objects,fuzz,tests/fuzz/fuzz_log.c): INC = $(INC_storage)

$(BUILD)/fuzz/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INC) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) -I$(GEN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
# storage_io.c initialises a static from a const object (static storage_io io = real_io), which gcc
# accepts and clang refuses: until the source changes, the fuzz build compiles a copy that makes the
# copy at start-up instead (the sed does nothing once that line is gone)
$(BUILD)/fuzz/clang/storage_io.c: storage/storage_io.c
	@mkdir -p $(dir $@)
	sed 's/^static storage_io io = real_io;$$/static storage_io io;\n__attribute__((constructor)) static void io_init(void) { io = real_io; }/' $< > $@
$(BUILD)/fuzz/storage/storage_io.o: $(BUILD)/fuzz/clang/storage_io.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INC_storage) -MMD -MP -c $< -o $@
# the network targets: the whole server; watch_hub's revision hook is wrapped so that the harness can
# put it on each fresh store
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/tests/fuzz/fuzz_%.o $(F_harness) $(F_src) $(F_gen) $(F_storage)
	@echo "$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ (the server's objects)"
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -Wl,--wrap=mvcc_on_revision -o $@ $^ $(LIBS)
# recovery needs storage and base only
$(BUILD)/fuzz/fuzz_log: $(BUILD)/fuzz/tests/fuzz/fuzz_log.o $(F_storage) $(call objects,fuzz,$(C_base))
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -pthread
fuzz: $(FUZZ_BINS)
# each target: its seeds, then FUZZ_RUNS inputs of a fixed seed (so that a run is repeatable), at most
# FUZZ_SECONDS; new inputs go to a scratch dir. Open bugs already reported (tests/fuzz/README.md) are
# stepped around (FUZZ_SKIP_KNOWN), so a failure here is a new one.
fuzz-smoke: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
		rm -rf $(BUILD)/fuzz/work/$$t && mkdir -p $(BUILD)/fuzz/work/$$t && start=$$(date +%s.%N) && \
		dict=$$([ -f tests/fuzz/$$t.dict ] && echo -dict=tests/fuzz/$$t.dict); \
		FUZZ_SKIP_KNOWN=1 $(BUILD)/fuzz/fuzz_$$t $(FUZZ_OPTS) $$dict -seed=1 -runs=$(FUZZ_RUNS) \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/work/$$t- \
			$(BUILD)/fuzz/work/$$t tests/fuzz/corpus/$$t > $(BUILD)/fuzz/work/$$t.log 2>&1; \
		st=$$?; \
		runs=$$(awk '/^stat::number_of_executed_units/ {print $$2}' $(BUILD)/fuzz/work/$$t.log); \
		echo "fuzz_$$t: $$runs runs in $$(awk -v a=$$start -v b=$$(date +%s.%N) 'BEGIN {printf "%.1f", b - a}') s"; \
		if [ $$st -ne 0 ]; then grep -A30 -E '^==[0-9]+==|fuzz.*: ' $(BUILD)/fuzz/work/$$t.log | head -60; \
			echo "fuzz_$$t failed: the input is in $(BUILD)/fuzz/work/, the log in $(BUILD)/fuzz/work/$$t.log"; \
			exit 1; fi; \
	done
T ?= h2
fuzz-run: $(BUILD)/fuzz/fuzz_$(T)
	@mkdir -p $(BUILD)/fuzz/work/$(T) tests/fuzz/crashes
	FUZZ_SKIP_KNOWN=1 nice $(BUILD)/fuzz/fuzz_$(T) $(FUZZ_OPTS) $(if $(wildcard tests/fuzz/$(T).dict),-dict=tests/fuzz/$(T).dict) \
		-artifact_prefix=tests/fuzz/crashes/$(T)- $(FUZZ_ARGS) \
		$(BUILD)/fuzz/work/$(T) tests/fuzz/corpus/$(T)

layers:
	scripts/check-layers.sh
# every binary runs, even after one fails; each prints Check's summary line
unit: $(UNIT_BINS)
	@st=0; for b in $^; do echo "== $$b"; $$b || st=1; done; exit $$st
unit-asan: $(UNIT_ASAN_BINS)
	@st=0; for b in $^; do echo "== $$b"; CK_FORK=no ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 $$b || st=1; done; exit $$st
integration: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd tests/run-integration.sh
# the server built with ASan+UBSan under the suites that feed it the most varied input
ASAN_SUITES := tests/integration/test_kv_etcdctl.sh tests/integration/test_kv_python.py \
	tests/integration/test_bad_input.py tests/integration/test_watch_etcdctl.sh \
	tests/integration/test_http.sh tests/integration/test_maint_etcdctl.sh tests/integration/test_count_steps.py
integration-asan: $(BUILD)/cetcd-asan
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd-asan ASAN_OPTIONS=detect_leaks=0 tests/run-integration.sh $(ASAN_SUITES)
# the layer check first: a tree that breaks the layering is not tested further
check: layers
	$(MAKE) --no-print-directory unit unit-asan integration integration-asan fuzz-smoke

run: $(BUILD)/cetcd
	$(BUILD)/cetcd --name default --data-dir default.cetcd --listen-client-urls http://127.0.0.1:2379 \
		--advertise-client-urls http://127.0.0.1:2379

bench: $(BUILD)/cetcd
	bench/run.sh
# bench-tls: put and range over mTLS, cetcd against Debian's etcd, plus put over plaintext for each one's TLS cost
.PHONY: bench-tls
bench-tls: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/tls_bench.sh
# bench-auth: put and range with auth on (simple tokens), cetcd against Debian's etcd, plus put with auth off for each one's cost
.PHONY: bench-auth
bench-auth: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/auth_bench.sh
# bench-stall: put 64/8 p99 while large lists, a Compact and a Defragment of 1M keys run, against the idle store, cetcd against Debian's etcd
.PHONY: bench-stall
bench-stall: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/stall_bench.sh
# bench-list: a full Range and pages of 500 over 20k and 100k keys x 1 KiB, with the Go clientv3, cetcd against Debian's etcd
.PHONY: bench-list
bench-list: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/list_bench.sh
# bench-h2load: put and range from h2load (cheaper per request than either server) next to etcd's Go benchmark, and
# events/s to one prefix watcher under 64 writers, cetcd against Debian's etcd
.PHONY: bench-h2load
bench-h2load: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/h2load_bench.sh
# bench-recovery: restart time and RSS per key of 1M keys (RECOVERY_BIG=1: also 10M), cetcd against Debian's etcd;
# RECOVERY_REUSE=1 reuses the filled data dirs kept in the cache (see bench/recovery_bench.sh)
.PHONY: bench-recovery
bench-recovery: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd bench/recovery_bench.sh
crash-soak: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd CRASH_ROUNDS=1000 /usr/bin/python3 tests/integration/test_crash.py
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd SOAK_REVISIONS=$${SOAK_REVISIONS:-1000000} \
		/usr/bin/python3 tests/integration/churn_soak.py

format:
	clang-format -i src/*.c src/*/*.[ch] storage/*.[ch] tests/unit/*.[ch]
clean:
	rm -rf $(BUILD)

# --- Kubernetes on cetcd (issue 13; not part of check). The first run builds Kubernetes 1.20 from
# Debian's source package into ~/.cache/cetcd-k8s (scripts/k8s-build.sh, ~5-10 min on 2 cores, niced);
# later runs reuse it. k8s-e2e: a control plane with 3 hollow nodes over cetcd, then over Debian's etcd;
# k8s-bench: the same steps timed, 3 rounds, the table into bench/RESULTS.md; k8s-scale: 100k
# ConfigMaps under /registry/, apiserver start-up and lists against both.
.PHONY: k8s-build k8s-e2e k8s-bench k8s-scale
k8s-build:
	nice -n 10 scripts/k8s-build.sh
k8s-e2e: $(BUILD)/cetcd k8s-build
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd tests/k8s/e2e.sh
k8s-bench: $(BUILD)/cetcd k8s-build
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd tests/k8s/bench.sh
k8s-scale: $(BUILD)/cetcd k8s-build
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd tests/k8s/scale.sh

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
