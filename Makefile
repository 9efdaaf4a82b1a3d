# dialoginsight: build, test, demo.  `make help` lists the targets.
#
# Every target is defined once, here, with all of its prerequisites; the
# variables come first because make expands a rule's prerequisites as it
# reads the rule.  A target's `## ` comment is its line in `make help`, so
# a new target cannot be left out of the list.

PREFIX     ?= /usr/local
LUA_VER    ?= 5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror -std=gnu11
PIC        := -fPIC -fvisibility=hidden
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) -lhiredis

LUA54_INC  ?= /usr/include/lua5.4
LUAJIT_INC ?= /usr/include/luajit-2.1

# The C core: one set of sources, two Lua APIs (only the include path
# differs).  The host and the fuzz targets compile the same list in.
CORE_SRC := src/di_core.c src/di_aux.c src/di_buf.c src/di_json.c src/di_json_scan.c src/di_json_pick.c \
            src/di_http.c src/di_time.c src/di_limiter.c src/di_limiter_file.c src/di_csv.c \
            src/di_redis.c
CORE_HDR := $(wildcard src/*.h)
CORE54   := build/lua5.4/dialoginsight/core.so
COREJIT  := build/luajit/dialoginsight/core.so

# The Lua layer: every module under lua/dialoginsight/, in whatever
# subdirectories it is organised, for install and for the host's embedding.
LUA_MODS := $(shell find lua/dialoginsight -name '*.lua' | LC_ALL=C sort)

# The bundled host: the C core compiled in, the Lua layer embedded (see
# src/host/di_host.c), so bin/dialoginsight runs without LUA_PATH.
HOST       := bin/dialoginsight
HOST_SRC   := src/host/di_host.c
HOST_EMBED := build/host/di_embed.c

# Sanitizer builds of the core and the host, for check-asan.
SAN_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all
CORE54_ASAN := build/asan/lua5.4/dialoginsight/core.so
HOST_ASAN   := build/asan/bin/dialoginsight

# libFuzzer targets (fuzz/, see fuzz/README.md): Lua 5.4 with the core
# compiled in, under ASan+UBSan.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_decode fuzz_csv fuzz_fields
FUZZ_BINS    := $(addprefix build/fuzz/bin/,$(FUZZ_TARGETS))
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all

SOAK_ROWS ?= 200000

# Install trees: the Lua modules go to both; each gets the core built for it.
BIN_DIR  = $(DESTDIR)$(PREFIX)/bin
LUA_LDIR = $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VER)
LUA_CDIR = $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VER)
JIT_LDIR = $(DESTDIR)$(PREFIX)/share/lua/5.1
JIT_CDIR = $(DESTDIR)$(PREFIX)/lib/lua/5.1

.PHONY: all help bootstrap test lint docs demo bench bench-smoke soak fuzz fuzz-build \
        check-asan check-valgrind sandbox-start sandbox-stop \
        openresty-example openresty-example-stop install install-host \
        clean clean-host

all: $(CORE54) $(COREJIT) $(HOST) ## (the default) build the C core for Lua 5.4 and LuaJIT, and bin/dialoginsight

help: ## this list
	@awk -F':[^#]*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "make %-24s %s\n", $$1, $$2 }' \
	    $(firstword $(MAKEFILE_LIST))

bootstrap: ## install the Debian packages the build and the tests need (quiet when present)
	@./scripts/bootstrap

test: bootstrap all ## start a sandbox, run every spec (both runtimes), check-install, bench-smoke
	@./scripts/test

lint: bootstrap ## luacheck (.luacheckrc) on the library, specs, examples, sandbox, bench and fuzz drivers
	@luacheck -q lua spec examples sandbox bench fuzz/lua

docs: bootstrap all ## the API reference (LDoc, config.ld) into build/docs/; fails on a warning or a gap
	@./scripts/docs

demo: bootstrap all ## sync a generated CSV and run the examples against the local sandbox
	@./scripts/demo

# Benchmarks (bench/README.md): not part of make test, except the smoke run,
# which scripts/test runs so that they cannot rot.
bench: bootstrap all ## benchmarks side by side with peers and wrk (bench/README.md)
	@./bench/run

bench-smoke: bootstrap all ## every benchmark once, with tiny counts
	@./bench/run --smoke >/dev/null

# The fault soak (issue 9): a SOAK_ROWS-row sync with faults on, one kill -9,
# --resume until done, every row checked (scripts/soak, spec/soak/soak.lua).
soak: bootstrap all ## fault soak: a SOAK_ROWS-row sync (200000), kill -9, --resume, all rows checked
	@SOAK_ROWS=$(SOAK_ROWS) ./scripts/soak

# Replays fuzz/regressions/ and fuzzes each target for FUZZ_SECONDS, one at
# a time.
fuzz: fuzz-build ## replay fuzz/regressions/, then fuzz each target FUZZ_SECONDS (30)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run $(FUZZ_TARGETS)

fuzz-build: bootstrap $(FUZZ_BINS) ## build the libFuzzer targets (clang) into build/fuzz/bin/
	@:

check-asan: bootstrap all $(CORE54_ASAN) $(HOST_ASAN) ## core specs with ASan+UBSan, host specs with ASan+LSan
	@./scripts/check-sanitizers asan

check-valgrind: bootstrap all ## core specs under valgrind memcheck (errors and leaks)
	@./scripts/check-sanitizers valgrind

sandbox-start: bootstrap ## start the local OFC4 emulator (sandbox/README.md)
	@./sandbox/ctl start

sandbox-stop: ## stop the local sandbox
	@./sandbox/ctl stop

# The OpenResty example (examples/openresty/) in Debian's nginx, against the
# local sandbox: a newsletter form handler and a campaign dashboard.
openresty-example: bootstrap all ## the nginx example (form + dashboard) against the sandbox
	@./sandbox/ctl start >/dev/null
	@. "$${DI_SANDBOX_DIR:-build/sandbox}/env" && url=$$(./examples/openresty/run start) && \
	  echo "OpenResty example: $${url}dashboard  (POST $${url}subscribe, GET $${url}dashboard.json)" && \
	  echo "stop it with: make openresty-example-stop"

openresty-example-stop: ## stop the nginx example and the sandbox
	@./examples/openresty/run stop
	@./sandbox/ctl stop

# Every module of lua/dialoginsight/, subdirectories kept, to both trees.
install: all install-host ## install modules and cores (Lua 5.4 and 5.1 trees) and the host under PREFIX
	install -d $(LUA_CDIR)/dialoginsight $(JIT_CDIR)/dialoginsight
	install -m 755 $(CORE54) $(LUA_CDIR)/dialoginsight/core.so
	install -m 755 $(COREJIT) $(JIT_CDIR)/dialoginsight/core.so
	@for f in $(LUA_MODS:lua/%=%); do \
	  for d in $(LUA_LDIR) $(JIT_LDIR); do \
	    install -d "$$d/$$(dirname $$f)" && install -m 644 "lua/$$f" "$$d/$$f" || exit 1; \
	  done; \
	done
	@echo "installed $(words $(LUA_MODS)) Lua modules to $(LUA_LDIR) and $(JIT_LDIR)"

install-host: $(HOST) ## install bin/dialoginsight under PREFIX
	install -d $(BIN_DIR)
	install -m 755 $(HOST) $(BIN_DIR)/dialoginsight

clean: clean-host ## remove build/ and bin/dialoginsight
	rm -rf build

clean-host: ## remove bin/dialoginsight
	rm -f $(HOST)

# --- files ---------------------------------------------------------------

$(CORE54): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(COREJIT): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUAJIT_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(HOST_EMBED): src/host/embed.lua $(LUA_MODS)
	@mkdir -p $(dir $@)
	lua5.4 src/host/embed.lua $@ $(LUA_MODS)

$(HOST): $(HOST_SRC) src/host/di_embed.h $(HOST_EMBED) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -Isrc/host -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(HOST_SRC) $(HOST_EMBED) $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm

$(CORE54_ASAN): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WARN) $(PIC) -shared -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(HOST_ASAN): $(HOST_SRC) src/host/di_embed.h $(HOST_EMBED) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WARN) -Isrc -Isrc/host -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(HOST_SRC) $(HOST_EMBED) $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm

$(FUZZ_BINS): build/fuzz/bin/%: fuzz/%.c fuzz/harness.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $(WARN) -DDI_ROOT='"$(CURDIR)"' -Isrc -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $< $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm
