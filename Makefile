# slotsync - service discovery for HAProxy without reloads.
# Quiet by default; V=1 prints full commands.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl jansson libmicrohttpd gnutls libprotobuf-c
CSTD     = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -Iinclude -I$(BUILD)/gen
DEPFLAGS = -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -ljansson -lmicrohttpd -lgnutls -lprotobuf-c) -lev -lm
# packaging (issue 13): sd_notify from libsystemd
LDLIBS  += $(shell pkg-config --libs libsystemd 2>/dev/null || echo -lsystemd)
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
# etcd's gRPC messages (issue 24): C from proto/*.proto by protoc-c, in the
# build directory only.
PROTOS   = $(wildcard proto/*.proto)
PROTO_GEN = $(PROTOS:proto/%.proto=$(BUILD)/gen/%.pb-c.c)
PROTO_OBJS = $(PROTOS:proto/%.proto=$(BUILD)/gen/%.pb-c.o)
LIB_OBJS = $(LIB_SRCS:src/%.c=$(BUILD)/src/%.o) $(PROTO_OBJS)
TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
PYTHON  ?= /usr/bin/python3

.PHONY: compat-bins test-compat
.PHONY: all test unit integration integration-json asan valgrind bench bench-fleet demo screenshot fmt fmt-check install uninstall clean help deps

all: $(BIN)

help:
	@echo "targets:"
	@echo "  all          build bin/slotsync (default)"
	@echo "  deps         install missing Debian packages (as root) or print the apt-get line"
	@echo "  test         unit + integration tests (real etcd and haproxy on 127.0.0.1)"
	@echo "  unit         Criterion unit suites only"
	@echo "  integration  integration tests only (beside them, the etcd-facing ones on the JSON gateway)"
	@echo "  integration-json  every etcd-facing integration test on etcd.transport json"
	@echo "  test-compat  integration suite on HAProxy 3.0, 3.2, 3.4 with etcd 3.5 (README:"
	@echo "               Supported versions); compat-bins: only get those binaries"
	@echo "  asan         the whole test suite built with -fsanitize=address,undefined"
	@echo "  valgrind     unit suites under valgrind"
	@echo "  fuzz         libFuzzer targets with clang, FUZZ_SECONDS=$(FUZZ_SECONDS) each; fails on a finding"
	@echo "  bench        benchmarks side by side with reload-per-change and DNS (~15 min;"
	@echo "               BENCH_QUICK=1: ~3 min, smaller sizes); writes docs/PERFORMANCE.md"
	@echo "  bench-fleet  N slotsync hosts on a 3-member etcd: JSON, gRPC, gRPC via two"
	@echo "               grpc-proxies (~15 min; FLEET_SIZES=$(FLEET_SIZES)); its section of"
	@echo "               docs/PERFORMANCE.md"
	@echo "  demo         local etcd + haproxy + 3 whoami backends + slotsync, live churn;"
	@echo "               KEEP=1 keeps it all up until Ctrl-C (stats page, service URL)"
	@echo "  rules-check  promtool check/test of docs/deploy/prometheus, and headers-check (part of test)"
	@echo "  headers-check  the header rule: include/slotsync/ headers include only -t.h ones (part of unit)"
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

# The live page, as a C string (src/admin_page.html stays readable HTML).
$(BUILD)/gen/admin_page.h: src/admin_page.html
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GEN     $@")
	$(Q){ echo "static const char ADMIN_PAGE[] ="; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; \
	  echo "    ;"; } > $@.tmp && mv $@.tmp $@

$(BUILD)/src/admin.o: $(BUILD)/gen/admin_page.h

# All the .proto files at once: rpc.proto imports kv.proto.
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto $(PROTOS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Generated code: not ours to warn about.
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(PROTO_GEN:.c=.h)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CSTD) $(OPT) -I$(BUILD)/gen -w -c -o $@ $<

$(BUILD)/src/etcd_grpc.o $(BUILD)/tests/test_etcd_grpc.o: $(PROTO_GEN:.c=.h)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LDLIBS)

unit: deps $(TEST_BINS)
	$(Q)set -e; for t in $(TEST_BINS); do echo "== $$t"; ./$$t --jobs 2; done

# Both etcd transports are held by tests (issue 24). The whole suite runs on
# the default, gRPC; beside it, ETCD_TESTS run once more on the JSON gateway:
# the modules where the transport is what is tested (calls, watch, liveness,
# leases, TLS, authentication, listings) and a few end-to-end cases, to stay
# within make test's 10 minutes. make integration-json runs every
# etcd-facing module on the gateway (~6 min).
ETCD_TESTS = -k test_etcd_faults -k test_auth -k test_tls -k test_listing_faults \
             -k test_announce.test_registers_with_lease -k test_announce.test_etcd_outage \
             -k test_announce.test_end_to_end -k test_announce.test_stop_is_bounded \
             -k test_status.test_status_shows_three -k test_cli.test_sigusr1
ETCD_ALL_TESTS = -k test_etcd_faults -k test_auth -k test_tls -k test_listing_faults \
             -k test_announce -k test_status -k test_cli -k test_ownership -k test_daemon \
             -k test_clock_steps -k test_surfaces

# The JSON subset runs beside the whole suite (the tests mostly wait on
# processes, and each uses its own ports and temp dirs), its output shown
# after the suite's: together about 7 minutes instead of 9.5.
integration: deps $(BIN)
	$(Q)log=$$(mktemp); \
	$(PYTHON) integration/run.py --bin $(abspath $(BIN)) --etcd-transport json $(ETCD_TESTS) \
	    >$$log 2>&1 & jpid=$$!; \
	rc=0; $(PYTHON) integration/run.py --bin $(abspath $(BIN)) || rc=$$?; \
	jrc=0; wait $$jpid || jrc=$$?; \
	echo "== the etcd-facing subset again, on etcd.transport json (the gateway)"; cat $$log; rm -f $$log; \
	[ $$rc -eq 0 ] && [ $$jrc -eq 0 ]

integration-json: deps $(BIN)
	$(Q)$(PYTHON) integration/run.py --bin $(abspath $(BIN)) --etcd-transport json $(ETCD_ALL_TESTS)

test: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(TEST_BINS)
	$(Q)$(MAKE) --no-print-directory man-check rules-check unit integration

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/slotsync \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    test

valgrind: $(TEST_BINS)
	$(Q)set -e; for t in $(TEST_BINS); do valgrind -q --error-exitcode=1 --leak-check=full --trace-children=yes --child-silent-after-fork=yes ./$$t --no-early-exit -j1; done

bench: deps $(BIN)
	$(Q)$(PYTHON) integration/bench.py --bin $(abspath $(BIN)) --write docs/PERFORMANCE.md $(if $(filter-out 0,$(BENCH_QUICK)),--quick)

# N slotsync hosts against one 3-member etcd, three ways (issue 24 item 5):
# the "Fleet" section of docs/PERFORMANCE.md (make bench keeps it).
FLEET_SIZES ?= 50,200,1000
FLEET_ARGS ?=
bench-fleet: deps $(BIN)
	$(Q)$(PYTHON) integration/bench_fleet.py --bin $(abspath $(BIN)) --sizes $(FLEET_SIZES) --write docs/PERFORMANCE.md $(FLEET_ARGS)

# The compatibility matrix (issue 21): HAProxy 3.0/3.2/3.4 and etcd 3.5 from
# Debian's newer suites, cached in ~/.cache/slotsync/compat (integration/compat.sh).
compat-bins:
	$(Q)bash integration/compat.sh bins

test-compat: deps $(BIN)
	$(Q)COMPAT_JSON_TESTS="$(ETCD_TESTS)" bash integration/compat.sh test $(abspath $(BIN))

demo: deps $(BIN)
	$(Q)$(PYTHON) integration/demo.py --bin $(abspath $(BIN)) $(if $(filter-out 0,$(KEEP)),--keep)

screenshot: deps $(BIN)
	$(Q)$(PYTHON) integration/screenshot.py --bin $(abspath $(BIN)) --out docs/status-page.png

fmt:
	$(Q)clang-format -i src/*.c include/slotsync/*.h tests/*.c tests/*.h

fmt-check:
	$(Q)clang-format --dry-run --Werror src/*.c include/slotsync/*.h tests/*.c tests/*.h

# ---- packaging (issue 13): man pages, install/uninstall in Debian's places
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DATADIR     ?= $(PREFIX)/share/slotsync
DOCDIR      ?= $(PREFIX)/share/doc/slotsync
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc
SYSTEMD_SRC  = docs/deploy/systemd
UNITS        = slotsync.service slotsync-render.service slotsync-announce@.service
MANPAGES     = $(BUILD)/man/slotsync.8 $(BUILD)/man/slotsync.json.5

# The shipped Prometheus alert rules parse and do what their tests say
# (issue 19): promtool from Debian's prometheus package.
PROMTOOL ?= promtool
RULES_DIR = docs/deploy/prometheus

.PHONY: rules-check headers-check
rules-check: headers-check
	$(Q)$(PROMTOOL) check rules $(RULES_DIR)/slotsync-rules.yml
	$(Q)cd $(RULES_DIR) && $(PROMTOOL) test rules slotsync-rules.test.yml

.PHONY: man man-check FORCE
FORCE:

man: $(MANPAGES)

# Rebuilt every time: the pages name PREFIX's paths, and PREFIX may differ
# from the last build's (scdoc takes milliseconds).
$(BUILD)/man/%: docs/man/%.scd FORCE
	@mkdir -p $(@D)
	@$(if $(Q),echo "  SCDOC   $@")
	$(Q)sed -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< | scdoc > $@.tmp && mv $@.tmp $@

# The config's fields, from the keyword tables the loader reads the file
# with (issue 22): what check_man.py holds slotsync.json(5) to.
$(BUILD)/tests/config_fields: $(BUILD)/tests/config_fields.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every page renders without a warning from man (groff's included), and
# says every config field, option and signal the code has (issue 19), and
# no config field the code does not have (issue 22).
man-check: $(MANPAGES) $(BUILD)/tests/config_fields
	$(Q)$(BUILD)/tests/config_fields > $(BUILD)/man/config-fields.txt
	$(Q)$(PYTHON) tests/check_man.py --config-fields $(BUILD)/man/config-fields.txt
	$(Q)set -e; for m in $(MANPAGES); do \
	    out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null); \
	    if [ -n "$$out" ]; then echo "$$m:"; echo "$$out"; exit 1; fi; done; \
	    echo "man pages: no warnings"

$(BUILD)/units/%: $(SYSTEMD_SRC)/%.in
	@mkdir -p $(@D)
	$(Q)sed 's|@BINDIR@|$(BINDIR)|g' $< > $@

install: $(BIN) $(MANPAGES) $(UNITS:%=$(BUILD)/units/%)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/slotsync/announce
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/slotsync
	install -m 0644 $(BUILD)/man/slotsync.8 $(DESTDIR)$(MANDIR)/man8/slotsync.8
	install -m 0644 $(BUILD)/man/slotsync.json.5 $(DESTDIR)$(MANDIR)/man5/slotsync.json.5
	install -m 0644 haproxy/haproxy.cfg $(DESTDIR)$(DATADIR)/haproxy.cfg
	install -m 0644 $(UNITS:%=$(BUILD)/units/%) $(DESTDIR)$(UNITDIR)/
	install -m 0644 $(SYSTEMD_SRC)/slotsync.sysusers $(DESTDIR)$(SYSUSERSDIR)/slotsync.conf
	install -m 0644 $(SYSTEMD_SRC)/slotsync.json $(DESTDIR)$(SYSCONFDIR)/slotsync/slotsync.json.example
	install -m 0644 $(SYSTEMD_SRC)/haproxy-slotsync.conf $(SYSTEMD_SRC)/announce-web-1.conf \
	    $(DESTDIR)$(DOCDIR)/examples/

# Exactly what install put there; a directory goes only if it is slotsync's
# and empty (an operator's slotsync.json or announce files keep theirs).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/slotsync $(DESTDIR)$(MANDIR)/man8/slotsync.8 \
	    $(DESTDIR)$(MANDIR)/man5/slotsync.json.5 $(DESTDIR)$(DATADIR)/haproxy.cfg \
	    $(UNITS:%=$(DESTDIR)$(UNITDIR)/%) $(DESTDIR)$(SYSUSERSDIR)/slotsync.conf \
	    $(DESTDIR)$(SYSCONFDIR)/slotsync/slotsync.json.example \
	    $(DESTDIR)$(DOCDIR)/examples/haproxy-slotsync.conf \
	    $(DESTDIR)$(DOCDIR)/examples/announce-web-1.conf
	rmdir $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/slotsync/announce $(DESTDIR)$(SYSCONFDIR)/slotsync 2>/dev/null || true

clean:
	rm -rf build build-asan build-fuzz bin

# ---- fuzzing (issue 11) ----
# tests/fuzz/fuzz_<name>.c are libFuzzer targets. make test replays the
# corpus through each with the ordinary compiler (replay.c's main); make fuzz
# builds them with clang and -fsanitize=fuzzer,address,undefined and runs each
# for FUZZ_SECONDS, failing on any finding (saved as build-fuzz/findings/*).
FUZZ_SRCS    = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   = $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAYS = $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_CORPUS  = tests/data/bad-values
FUZZ_SEEDS_config = tests/data/config
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_OPT     = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: fuzz fuzz-replay fuzz-bins fmt-fuzz fmt-check-fuzz
.PRECIOUS: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/replay_% $(BUILD)/fuzz/fuzzer_%

$(BUILD)/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/fuzz/replay_%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/fuzzer_%: $(BUILD)/fuzz/fuzz_%.o $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay-%: $(BUILD)/fuzz/replay_%
	$(Q)./$< $(FUZZ_CORPUS) $(wildcard tests/fuzz/seeds/$*) $(FUZZ_SEEDS_$*)

fuzz-replay: $(FUZZ_NAMES:%=fuzz-replay-%)

unit: fuzz-replay headers-check

# The header rule (docs/DESIGN.md): a header includes only system headers
# and -t.h headers, and a -t.h header declares no function.
headers-check:
	$(Q)$(PYTHON) tests/check_headers.py include/slotsync

fmt: fmt-fuzz
fmt-check: fmt-check-fuzz
fmt-fuzz:
	$(Q)clang-format -i tests/fuzz/*.c tests/fuzz/*.h
fmt-check-fuzz:
	$(Q)clang-format --dry-run --Werror tests/fuzz/*.c tests/fuzz/*.h

fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzzer_%)

fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) \
	    OPT="$(FUZZ_OPT) -fsanitize=fuzzer-no-link" fuzz-bins
	$(Q)set -e; mkdir -p build-fuzz/findings; for n in $(FUZZ_NAMES); do \
	    echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; mkdir -p build-fuzz/corpus/$$n; \
	    if ./build-fuzz/fuzz/fuzzer_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/findings/$$n- build-fuzz/corpus/$$n $(FUZZ_CORPUS) \
	        $$(test -d tests/fuzz/seeds/$$n && echo tests/fuzz/seeds/$$n) \
	        $$(test $$n = config && echo $(FUZZ_SEEDS_config)) >build-fuzz/$$n.log 2>&1; then \
	        grep -E '^stat::(number_of_executed_units|new_units_added)' build-fuzz/$$n.log; \
	    else tail -n 40 build-fuzz/$$n.log; echo "fuzz $$n: finding, see build-fuzz/findings/"; \
	        exit 1; fi; done

-include $(wildcard $(BUILD)/src/*.d $(BUILD)/tests/*.d $(BUILD)/fuzz/*.d)
