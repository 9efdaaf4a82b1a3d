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
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl) -lhiredis -lsqlite3 -lcrypto -lanl -lpthread

LUA54_INC  ?= /usr/include/lua5.4
LUA51_INC  ?= /usr/include/lua5.1
LUAJIT_INC ?= /usr/include/luajit-2.1

# The C core: one set of sources, three Lua APIs (only the include path
# differs; di_compat.h holds the differences).  The host and the fuzz
# targets compile the same list in.
CORE_SRC := src/di_core.c src/di_aux.c src/di_buf.c src/di_json.c src/di_json_scan.c src/di_json_pick.c \
            src/di_json_write.c src/di_rows.c \
            src/di_http.c src/di_time.c src/di_limiter.c src/di_limiter_file.c src/di_csv.c \
            src/di_redis.c src/di_file.c src/di_hmac.c src/di_sqlite.c src/di_keyset.c
CORE_HDR := $(wildcard src/*.h)
CORE54   := build/lua5.4/dialoginsight/core.so
CORE51   := build/lua5.1/dialoginsight/core.so
COREJIT  := build/luajit/dialoginsight/core.so

# The Lua layer: every module under lua/dialoginsight/, in whatever
# subdirectories it is organised, for install and for the host's embedding.
LUA_MODS := $(shell find lua/dialoginsight -name '*.lua' | LC_ALL=C sort)

# The bundled host: the C core compiled in, the Lua layer and argparse
# embedded (see src/host/di_host.c), so bin/dialoginsight runs without
# LUA_PATH.  argparse.lua is Debian's lua-argparse, or any found on lua5.4's
# package.path; ARGPARSE=/path/argparse.lua names another.
HOST       := bin/dialoginsight
HOST_SRC   := src/host/di_host.c
HOST_EMBED := build/host/di_embed.c
ARGPARSE   ?= $(shell lua5.4 -e 'io.write(package.searchpath("argparse", package.path) or "")' 2>/dev/null)

# Sanitizer builds of the core and the host, for check-asan.
SAN_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all
CORE54_ASAN := build/asan/lua5.4/dialoginsight/core.so
HOST_ASAN   := build/asan/bin/dialoginsight

# libFuzzer targets (fuzz/, see fuzz/README.md): Lua 5.4 with the core
# compiled in, under ASan+UBSan.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_decode fuzz_csv fuzz_fields fuzz_rows
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
        rock rock-build rock-install clean clean-host

all: $(CORE54) $(CORE51) $(COREJIT) $(HOST) ## (the default) build the C core for Lua 5.4, 5.1 and LuaJIT, and bin/dialoginsight

help: ## this list
	@awk -F':[^#]*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "make %-24s %s\n", $$1, $$2 }' \
	    $(firstword $(MAKEFILE_LIST))

bootstrap: ## install the Debian packages the build and the tests need (quiet when present)
	@./scripts/bootstrap

test: bootstrap all ## start a sandbox, run every spec (both runtimes), check-install, bench-smoke
	@./scripts/test

lint: bootstrap ## luacheck (.luacheckrc) on the library, specs, examples, sandbox, bench and fuzz drivers; the layers' imports, the option declarations, no C call cycle (scripts/check-layers, check-options, check-c-calls)
	@luacheck -q lua spec examples sandbox bench fuzz/lua
	@./scripts/check-layers
	@./scripts/check-options
	@./scripts/check-c-calls

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

# --- LuaRocks --------------------------------------------------------------
# The rockspec builds with type "make": `luarocks make` and `luarocks install`
# run `make rock-build`, then `make rock-install`, with LuaRocks' variables
# for the Lua the rock is for (LUA, LUA_INCDIR, CFLAGS, LIBFLAG, the external
# dependencies' dirs) and for where its files go (LIBDIR, BINDIR; the Lua
# modules are the rockspec's build.install.lua).
# Everything is built under build/rock/, never beside the sources: the
# builtin type's src/*.o and ./dialoginsight/core.so were left in the
# checkout, where Lua's default cpath (./?.so) loaded the stray core.
# The host embeds Lua 5.4, so it is built and installed for a Lua 5.4 rock
# only; a Lua 5.1 (or LuaJIT) rock installs the library alone.
LUA        ?= lua5.4
LUA_INCDIR ?= $(LUA54_INC)
LIBFLAG    ?= -shared
# the rock's Lua version ("5.4"), found once, only when a rock target asks
ROCK_VER    = $(eval ROCK_VER := $$(shell $(LUA) -e 'io.write((_VERSION:gsub("^Lua ", "")))'))$(ROCK_VER)
ROCK_DIR    = build/rock/$(ROCK_VER)
ROCK_DEPS   = $(if $(CURL_LIBDIR),-L$(CURL_LIBDIR)) $(if $(HIREDIS_LIBDIR),-L$(HIREDIS_LIBDIR)) \
              $(if $(HIREDIS_INCDIR),-I$(HIREDIS_INCDIR))
# the host's Lua library: LUA_LIBDIR and LUALIB when given by hand
# (`make rock-build LUALIB=liblua.so`), else pkg-config's lua5.4, else
# Debian's name (LuaRocks defines neither on Linux: the rockspec passes none)
ROCK_LUALIB = $(if $(LUA_LIBDIR),-L$(LUA_LIBDIR)) \
              $(if $(LUALIB),$(patsubst lib%,-l%,$(basename $(LUALIB))), \
                $(or $(shell pkg-config --libs lua$(ROCK_VER) 2>/dev/null),-llua$(ROCK_VER)))
ROCK_ONLY   = 5.1 5.4

rock-build: ## (run by luarocks) the core for the rock's Lua under build/rock/, and the host for 5.4
	@case " $(ROCK_ONLY) " in *" $(ROCK_VER) "*) ;; *) \
	  echo "dialoginsight: Lua '$(ROCK_VER)' ($(LUA)) is not supported: build the rock for" \
	    "Lua 5.4 (the library and the dialoginsight command) or 5.1/LuaJIT (the library)" >&2; \
	  exit 1;; esac
	@rm -rf $(ROCK_DIR) && mkdir -p $(ROCK_DIR)/dialoginsight $(ROCK_DIR)/bin
	$(CC) $(CFLAGS) $(WARN) $(PIC) $(LIBFLAG) -I$(LUA_INCDIR) $(CURL_CFLAGS) $(ROCK_DEPS) \
	    -o $(ROCK_DIR)/dialoginsight/core.so $(CORE_SRC) $(CURL_LIBS) -lm
	@if [ "$(ROCK_VER)" != 5.4 ]; then \
	  echo "dialoginsight: the dialoginsight command embeds Lua 5.4: not built for a Lua" \
	    "$(ROCK_VER) rock (luarocks --lua-version=5.4 installs it, as does make install)" >&2; \
	else \
	  ap="$(ARGPARSE)"; \
	  [ -n "$$ap" ] || ap=$$($(LUA) -e 'io.write(package.searchpath("argparse", package.path) or "")'); \
	  test -n "$$ap" || { echo "dialoginsight: argparse.lua not found on $(LUA)'s package.path:" \
	    "install Debian's lua-argparse or the argparse rock, or give ARGPARSE=/path/argparse.lua" >&2; \
	    exit 1; }; \
	  echo "$(LUA) src/host/embed.lua $(ROCK_DIR)/di_embed.c ... argparse=$$ap"; \
	  $(LUA) src/host/embed.lua $(ROCK_DIR)/di_embed.c $(LUA_MODS) argparse="$$ap" || exit 1; \
	  echo "$(CC) ... -o $(ROCK_DIR)/bin/dialoginsight"; \
	  $(CC) $(CFLAGS) $(WARN) -Isrc -Isrc/host -I$(LUA_INCDIR) $(CURL_CFLAGS) $(ROCK_DEPS) \
	    -o $(ROCK_DIR)/bin/dialoginsight $(HOST_SRC) $(ROCK_DIR)/di_embed.c $(CORE_SRC) \
	    $(ROCK_LUALIB) $(CURL_LIBS) -lm || exit 1; \
	fi

rock-install: ## (run by luarocks) the rock's core to LIBDIR, and the host, when built, to BINDIR
	@test -n "$(LIBDIR)" && test -n "$(BINDIR)" || { echo "make rock-install: LIBDIR and BINDIR" \
	  "come from luarocks (use make install)" >&2; exit 1; }
	install -d $(LIBDIR)/dialoginsight
	install -m 755 $(ROCK_DIR)/dialoginsight/core.so $(LIBDIR)/dialoginsight/core.so
	@if [ -x $(ROCK_DIR)/bin/dialoginsight ]; then \
	  install -d $(BINDIR) && install -m 755 $(ROCK_DIR)/bin/dialoginsight $(BINDIR)/dialoginsight; \
	fi

# A source rock of the working tree, as it is (tracked files and new ones
# not ignored): build/rock/dialoginsight-V.src.rock, which
# `luarocks install --deps-mode=none` builds offline (scripts/make-rock).
rock: ## a source rock of the working tree: build/rock/dialoginsight-<version>.src.rock
	@./scripts/make-rock

clean: clean-host ## remove build/ and bin/dialoginsight
	rm -rf build

clean-host: ## remove bin/dialoginsight
	rm -f $(HOST)

# --- files ---------------------------------------------------------------

$(CORE54): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(CORE51): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUA51_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(COREJIT): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUAJIT_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(HOST_EMBED): src/host/embed.lua $(LUA_MODS) $(ARGPARSE)
	@mkdir -p $(dir $@)
	@test -n "$(ARGPARSE)" || { echo "make: argparse.lua not found on lua5.4's package.path:" \
	  "install Debian's lua-argparse (make bootstrap), or give ARGPARSE=/path/argparse.lua" >&2; exit 1; }
	lua5.4 src/host/embed.lua $@ $(LUA_MODS) argparse=$(ARGPARSE)

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
