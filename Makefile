# Makefile: builds cetcd (server, protobuf code, unit tests) and runs it: `make run`, `make check`,
# `make bench`. Missing system packages are installed by scripts/install-deps.sh on first build.
CC ?= cc
BUILD := build
GEN := $(BUILD)/gen
WARN := -Wall -Wextra -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -I$(GEN) -Isrc -Istorage
OPT ?= -O2 -g1
SAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIBS := -lev -lnghttp2 -lprotobuf-c -lxxhash -lm -pthread
CHECK_LIBS = $(shell pkg-config --libs check)

PROTOS := proto/kv.proto proto/auth.proto proto/rpc.proto
GEN_C := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
STORAGE_C := $(wildcard storage/*.c)
SERVER_C := $(filter-out src/main.c,$(wildcard src/*.c))
UNIT_C := $(wildcard tests/unit/test_*.c)
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all run check unit unit-asan integration integration-asan bench crash-soak format clean deps
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

# --- objects: release in build/obj, sanitized in build/asan ---
define objects
$(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))
endef
REL_OBJ := $(call objects,obj,$(STORAGE_C) $(SERVER_C))
ASAN_OBJ := $(call objects,asan,$(STORAGE_C) $(SERVER_C))
REL_GEN_OBJ := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
ASAN_GEN_OBJ := $(patsubst $(GEN)/%.c,$(BUILD)/asan/gen/%.o,$(GEN_C))

$(BUILD)/obj/%.o: %.c $(GEN_H) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(WARN) $(OPT) -MMD -MP -c $< -o $@
$(BUILD)/asan/%.o: %.c $(GEN_H) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(WARN) $(SAN) -MMD -MP -c $< -o $@
# generated code is protoc-c's, compiled without -Werror
$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(OPT) -c $< -o $@
$(BUILD)/asan/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/cetcd: $(BUILD)/obj/src/main.o $(REL_OBJ) $(REL_GEN_OBJ)
	$(CC) $(OPT) -o $@ $^ $(LIBS)
$(BUILD)/cetcd-asan: $(BUILD)/asan/src/main.o $(ASAN_OBJ) $(ASAN_GEN_OBJ)
	$(CC) $(SAN) -o $@ $^ $(LIBS)

# --- unit tests (Check): every tests/unit/test_*.c defines `Suite *<name>_suite(void)` ---
$(GEN)/suites.h: $(UNIT_C) | $(DEPS_OK)
	@mkdir -p $(GEN)
	@sed -n 's/^Suite \*\([a-z0-9_]*_suite\)(void).*/SUITE(\1)/p' $(UNIT_C) > $@.tmp && mv $@.tmp $@
UNIT_REL := $(call objects,obj,$(UNIT_C) tests/unit/check_main.c tests/unit/fixture.c)
UNIT_ASAN := $(call objects,asan,$(UNIT_C) tests/unit/check_main.c tests/unit/fixture.c)
$(BUILD)/obj/tests/unit/check_main.o $(BUILD)/asan/tests/unit/check_main.o: $(GEN)/suites.h
$(BUILD)/unit: $(UNIT_REL) $(REL_OBJ) $(REL_GEN_OBJ)
	$(CC) $(OPT) -o $@ $^ $(LIBS) $(CHECK_LIBS)
$(BUILD)/unit-asan: $(UNIT_ASAN) $(ASAN_OBJ) $(ASAN_GEN_OBJ)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(CHECK_LIBS)

unit: $(BUILD)/unit
	$(BUILD)/unit
unit-asan: $(BUILD)/unit-asan
	CK_FORK=no ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/unit-asan
integration: $(BUILD)/cetcd
	tests/run-integration.sh
# the server built with ASan+UBSan under the suites that feed it the most varied input
ASAN_SUITES := tests/integration/test_kv_etcdctl.sh tests/integration/test_kv_python.py \
	tests/integration/test_bad_input.py tests/integration/test_watch_etcdctl.sh \
	tests/integration/test_http.sh tests/integration/test_maint_etcdctl.sh
integration-asan: $(BUILD)/cetcd-asan
	CETCD_BIN=$(CURDIR)/$(BUILD)/cetcd-asan ASAN_OPTIONS=detect_leaks=0 tests/run-integration.sh $(ASAN_SUITES)
check: unit unit-asan integration integration-asan

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
	clang-format -i src/*.[ch] storage/*.[ch] tests/unit/*.[ch]
clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
