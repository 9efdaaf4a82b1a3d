# dialoginsight: build, test, demo.  `make help` lists the targets.

PREFIX     ?= /usr/local
LUA_VER    ?= 5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror -std=gnu11
PIC        := -fPIC -fvisibility=hidden
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

LUA54_INC  ?= /usr/include/lua5.4
LUAJIT_INC ?= /usr/include/luajit-2.1

CORE_SRC := src/di_core.c src/di_aux.c src/di_buf.c src/di_json.c src/di_http.c src/di_time.c src/di_limiter.c src/di_csv.c
CORE_HDR := $(wildcard src/*.h)

CORE54 := build/lua5.4/dialoginsight/core.so
COREJIT := build/luajit/dialoginsight/core.so

.PHONY: all help bootstrap test demo sandbox-start sandbox-stop install clean \
        check-asan check-valgrind

all: $(CORE54) $(COREJIT)

help:
	@echo "make            build the C core for Lua 5.4 and LuaJIT"
	@echo "make test       install missing packages, build, start the sandbox, run every spec"
	@echo "make demo       run the main example job against the local sandbox"
	@echo "make bench      benchmarks side by side with peers and wrk (bench/README.md)"
	@echo "make sandbox-start / sandbox-stop"
	@echo "make openresty-example / openresty-example-stop   the nginx example (form + dashboard)"
	@echo "make install PREFIX=/usr/local"

bootstrap:
	@./scripts/bootstrap

# One set of sources, two Lua APIs: only the include path differs.
$(CORE54): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

$(COREJIT): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(PIC) -shared -I$(LUAJIT_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

# Sanitizer and memcheck builds of the core, and the specs run against them.
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=all
CORE54_ASAN := build/asan/lua5.4/dialoginsight/core.so

$(CORE54_ASAN): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WARN) $(PIC) -shared -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(CORE_SRC) $(CURL_LIBS) -lm

check-asan: bootstrap all $(CORE54_ASAN)
	@./scripts/check-sanitizers asan

check-valgrind: bootstrap all
	@./scripts/check-sanitizers valgrind

sandbox-start: bootstrap
	@./sandbox/ctl start

sandbox-stop:
	@./sandbox/ctl stop

# The OpenResty example (examples/openresty/) in Debian's nginx, against the
# local sandbox: a newsletter form handler and a campaign dashboard.
.PHONY: openresty-example openresty-example-stop
openresty-example: bootstrap all
	@./sandbox/ctl start >/dev/null
	@. "$${DI_SANDBOX_DIR:-build/sandbox}/env" && url=$$(./examples/openresty/run start) && \
	  echo "OpenResty example: $${url}dashboard  (POST $${url}subscribe, GET $${url}dashboard.json)" && \
	  echo "stop it with: make openresty-example-stop"

openresty-example-stop:
	@./examples/openresty/run stop
	@./sandbox/ctl stop

test: bootstrap all
	@./scripts/test

# Benchmarks (bench/README.md): not part of make test, except the smoke run,
# which scripts/test runs so that they cannot rot.
.PHONY: bench bench-smoke
bench: bootstrap all
	@./bench/run

bench-smoke: bootstrap all
	@./bench/run --smoke >/dev/null

demo: bootstrap all
	@./scripts/demo

LUA_LDIR  = $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VER)
LUA_CDIR  = $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VER)
JIT_CDIR  = $(DESTDIR)$(PREFIX)/lib/lua/5.1
JIT_LDIR  = $(DESTDIR)$(PREFIX)/share/lua/5.1

# The Lua modules go to both trees; each tree gets the core built for it.
install: all
	install -d $(LUA_LDIR)/dialoginsight/transport $(LUA_CDIR)/dialoginsight
	install -m 644 lua/dialoginsight/*.lua $(LUA_LDIR)/dialoginsight/
	install -m 644 lua/dialoginsight/transport/*.lua $(LUA_LDIR)/dialoginsight/transport/
	install -m 755 $(CORE54) $(LUA_CDIR)/dialoginsight/core.so
	install -d $(JIT_LDIR)/dialoginsight/transport $(JIT_CDIR)/dialoginsight
	install -m 644 lua/dialoginsight/*.lua $(JIT_LDIR)/dialoginsight/
	install -m 644 lua/dialoginsight/transport/*.lua $(JIT_LDIR)/dialoginsight/transport/
	install -m 755 $(COREJIT) $(JIT_CDIR)/dialoginsight/core.so

clean:
	rm -rf build

# The bundled host: the C core compiled in, the Lua layer embedded (see
# src/host/di_host.c), so bin/dialoginsight runs without LUA_PATH.
HOST       := bin/dialoginsight
HOST_SRC   := src/host/di_host.c
HOST_LUA   := $(shell find lua/dialoginsight -name '*.lua' | LC_ALL=C sort)
HOST_EMBED := build/host/di_embed.c

all: $(HOST)

$(HOST_EMBED): src/host/embed.lua $(HOST_LUA)
	@mkdir -p $(dir $@)
	lua5.4 src/host/embed.lua $@ $(HOST_LUA)

$(HOST): $(HOST_SRC) src/host/di_embed.h $(HOST_EMBED) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -Isrc/host -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(HOST_SRC) $(HOST_EMBED) $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm

HOST_ASAN := build/asan/bin/dialoginsight
$(HOST_ASAN): $(HOST_SRC) src/host/di_embed.h $(HOST_EMBED) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) $(WARN) -Isrc -Isrc/host -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $(HOST_SRC) $(HOST_EMBED) $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm
check-asan: $(HOST_ASAN)

.PHONY: install-host
install: install-host
install-host: $(HOST)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(HOST) $(DESTDIR)$(PREFIX)/bin/dialoginsight

.PHONY: clean-host
clean: clean-host
clean-host:
	rm -f $(HOST)

# libFuzzer targets (fuzz/, see fuzz/README.md): Lua 5.4 with the core
# compiled in, under ASan+UBSan.  `make fuzz FUZZ_SECONDS=N` replays
# fuzz/regressions/ and fuzzes each target for N seconds, one at a time.
.PHONY: fuzz fuzz-build
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_decode fuzz_csv fuzz_fields
FUZZ_BINS    := $(addprefix build/fuzz/bin/,$(FUZZ_TARGETS))
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all

$(FUZZ_BINS): build/fuzz/bin/%: fuzz/%.c fuzz/harness.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) $(WARN) -DDI_ROOT='"$(CURDIR)"' -Isrc -I$(LUA54_INC) $(CURL_CFLAGS) \
	    -o $@ $< $(CORE_SRC) -llua5.4 $(CURL_LIBS) -lm

fuzz-build: bootstrap $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./fuzz/run $(FUZZ_TARGETS)

# The fault soak (issue 9): a SOAK_ROWS-row sync with faults on, one kill -9,
# --resume until done, every row checked (scripts/soak, spec/soak/soak.lua).
.PHONY: soak
SOAK_ROWS ?= 200000
soak: bootstrap all
	@SOAK_ROWS=$(SOAK_ROWS) ./scripts/soak
