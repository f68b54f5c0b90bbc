# slotsync - service discovery for HAProxy without reloads.
# Quiet by default; V=1 prints full commands.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl jansson
CSTD     = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -Iinclude
DEPFLAGS = -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -ljansson) -lev -lm
TEST_LDLIBS = $(LDLIBS) -lcriterion

ifeq ($(V),1)
Q =
else
Q = @
endif

BUILD   ?= build
BIN      = bin/slotsync
SRCS     = $(wildcard src/*.c)
LIB_SRCS = $(filter-out src/main.c,$(SRCS))
LIB_OBJS = $(LIB_SRCS:src/%.c=$(BUILD)/src/%.o)
TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
PYTHON  ?= /usr/bin/python3

.PHONY: all test unit integration asan valgrind bench demo fmt fmt-check install uninstall clean help deps

all: $(BIN)

help:
	@echo "targets:"
	@echo "  all          build bin/slotsync (default)"
	@echo "  deps         install missing Debian packages (as root) or print the apt-get line"
	@echo "  test         unit + integration tests (real etcd and haproxy on 127.0.0.1)"
	@echo "  unit         Criterion unit suites only"
	@echo "  integration  integration tests only"
	@echo "  asan         the whole test suite built with -fsanitize=address,undefined"
	@echo "  valgrind     unit suites under valgrind"
	@echo "  bench        benchmarks side by side with reload-per-change and DNS (~15 min;"
	@echo "               BENCH_QUICK=1: ~3 min, smaller sizes); writes docs/PERFORMANCE.md"
	@echo "  demo         local etcd + haproxy + 3 whoami backends + slotsync, live churn;"
	@echo "               KEEP=1 keeps it all up until Ctrl-C (stats page, service URL)"
	@echo "  fmt, fmt-check  clang-format the tree / check it"
	@echo "  install, uninstall  PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"
	@echo "  clean"
	@echo "variables: V=1 (verbose), CC=clang, OPT=..."

deps:
	$(Q)sh integration/deps.sh

$(BIN): $(LIB_OBJS) $(BUILD)/src/main.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LDLIBS)

unit: deps $(TEST_BINS)
	$(Q)set -e; for t in $(TEST_BINS); do echo "== $$t"; ./$$t --jobs 2; done

integration: deps $(BIN)
	$(Q)$(PYTHON) integration/run.py --bin $(abspath $(BIN))

test: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(TEST_BINS)
	$(Q)$(MAKE) --no-print-directory unit integration

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/slotsync \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    test

valgrind: $(TEST_BINS)
	$(Q)set -e; for t in $(TEST_BINS); do valgrind -q --error-exitcode=1 --leak-check=full --trace-children=yes --child-silent-after-fork=yes ./$$t --no-early-exit -j1; done

bench: deps $(BIN)
	$(Q)$(PYTHON) integration/bench.py --bin $(abspath $(BIN)) --write docs/PERFORMANCE.md $(if $(filter-out 0,$(BENCH_QUICK)),--quick)

demo: deps $(BIN)
	$(Q)$(PYTHON) integration/demo.py --bin $(abspath $(BIN)) $(if $(filter-out 0,$(KEEP)),--keep)

fmt:
	$(Q)clang-format -i src/*.c include/slotsync/*.h tests/*.c

fmt-check:
	$(Q)clang-format --dry-run --Werror src/*.c include/slotsync/*.h tests/*.c

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/slotsync
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/slotsync
	install -m 0644 haproxy/haproxy.cfg $(DESTDIR)$(PREFIX)/share/slotsync/haproxy.cfg

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/slotsync
	rm -rf $(DESTDIR)$(PREFIX)/share/slotsync

clean:
	rm -rf build build-asan bin

-include $(wildcard $(BUILD)/src/*.d $(BUILD)/tests/*.d)
