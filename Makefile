# Makefile: builds cetcd (server, protobuf code, unit tests) and runs it: `make run`, `make check`,
# `make bench`. Missing system packages are installed by scripts/install-deps.sh on first build.
CC ?= cc
BUILD := build
GEN := $(BUILD)/gen
WARN := -Wall -Wextra -Werror
CSTD := -std=c11 -D_GNU_SOURCE
OPT ?= -O2 -g1
SAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIBS := -lev -lnghttp2 -lprotobuf-c -lxxhash -lm -pthread
CHECK_LIBS = $(shell pkg-config --libs check)

PROTOS := proto/kv.proto proto/auth.proto proto/rpc.proto proto/lease.proto
GEN_C := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all run check layers unit unit-asan integration integration-asan bench crash-soak format clean deps
# generated sources are kept (not removed as intermediates), so nothing is rebuilt for no reason
.SECONDARY: $(GEN_C) $(GEN_H)
all: $(BUILD)/cetcd

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

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(INC) $(WARN) $(OPT) -MMD -MP -c $< -o $@
$(BUILD)/asan/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(INC) $(WARN) $(SAN) -MMD -MP -c $< -o $@
# generated code is protoc-c's, compiled without -Werror
$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -I$(GEN) $(OPT) -c $< -o $@
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
$(BUILD)/cetcd: $(O_main) $(foreach L,$(SERVER_LAYERS),$(O_$(L))) $(O_gen) $(BUILD)/libstorage.a
	$(CC) $(OPT) -o $@ $^ $(LIBS)
$(BUILD)/cetcd-asan: $(A_main) $(foreach L,$(SERVER_LAYERS),$(A_$(L))) $(A_gen) $(BUILD)/libstorage-asan.a
	$(CC) $(SAN) -o $@ $^ $(LIBS)

# --- unit tests (Check): one binary per layer, $(BUILD)/unit-<layer>, linking its tests, the archive of
# that layer and those of the layers below it (so it links only what it uses, and nothing above).
# Every tests/unit/test_*.c defines `Suite *<name>_suite(void)` and is listed under one layer here.
UNIT_LAYERS := base storage rpc api gateway
UNIT_base := tests/unit/test_sha256.c
UNIT_storage := $(addprefix tests/unit/,test_bptree.c test_log.c test_mvcc.c test_history.c \
	test_compactor.c test_export.c) $(wildcard tests/unit/test_lifecycle*.c)
UNIT_rpc := tests/unit/test_commit.c
UNIT_api := tests/unit/test_lease_timers.c tests/unit/test_bbolt.c
UNIT_gateway := tests/unit/test_json.c tests/unit/test_pbjson.c
# helpers a layer's tests link besides the tests (test_lifecycle.c includes crashfs.c itself)
UNIT_HELPERS_storage := tests/unit/fixture.c
UNIT_HELPERS_rpc := tests/unit/fixture.c
# the archives each binary links, in link order (the layer first, then what it may use)
UNIT_LIBS_base := base
UNIT_LIBS_storage := storage base
UNIT_LIBS_rpc := rpc gen storage base
UNIT_LIBS_api := api rpc gen storage base
UNIT_LIBS_gateway := gateway api watch rpc gen storage base
# and the system libraries: storage's tests link neither libev nor nghttp2 nor protobuf-c
SYSLIBS_base := -lm -pthread
SYSLIBS_storage := -lxxhash $(SYSLIBS_base)
SYSLIBS_rpc := -lev -lprotobuf-c $(SYSLIBS_storage)
SYSLIBS_api := $(SYSLIBS_rpc)
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
$(foreach L,rpc api gateway,$(eval $(call objects,obj,$(UNIT_$(L))) $(call objects,asan,$(UNIT_$(L))): $(GEN_H)))

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
	tests/integration/test_http.sh tests/integration/test_maint_etcdctl.sh
integration-asan: $(BUILD)/cetcd-asan
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd-asan ASAN_OPTIONS=detect_leaks=0 tests/run-integration.sh $(ASAN_SUITES)
# the layer check first: a tree that breaks the layering is not tested further
check: layers
	$(MAKE) --no-print-directory unit unit-asan integration integration-asan

run: $(BUILD)/cetcd
	$(BUILD)/cetcd --name default --data-dir default.cetcd --listen-client-urls http://127.0.0.1:2379 \
		--advertise-client-urls http://127.0.0.1:2379

bench: $(BUILD)/cetcd
	bench/run.sh
crash-soak: $(BUILD)/cetcd
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd CRASH_ROUNDS=1000 /usr/bin/python3 tests/integration/test_crash.py
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd SOAK_REVISIONS=$${SOAK_REVISIONS:-1000000} \
		/usr/bin/python3 tests/integration/churn_soak.py

format:
	clang-format -i src/*.c src/*/*.[ch] storage/*.[ch] tests/unit/*.[ch]
clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
