# ngx_sip: build the module against Debian's nginx (nginx-dev), run the
# demo, run the tests.  See README.md.

SHELL       := /bin/bash
TOP         := $(CURDIR)
OBJS        := $(TOP)/objs
NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
TORTURE     ?= $(abspath $(TOP)/../shared/sip-torture)
CC          ?= cc
CLANG       ?= clang-14

CORE_SRCS   := src/ngx_sip_chars.c src/ngx_sip_parse.c \
               src/ngx_sip_parse_uri.c src/ngx_sip_parse_header.c \
               src/ngx_sip_message.c \
               src/ngx_sip_forward.c src/ngx_sip_auth.c src/ngx_sip_ws.c \
               src/ngx_sip_transport.c src/ngx_sip_hex.c src/ngx_sip_hash.c
CORE_HDRS   := src/ngx_sip.h src/ngx_sip_ws.h tests/ngx_sip_standalone.h \
               tests/ngx_sip_test.h
MOD_SRCS    := $(CORE_SRCS) src/ngx_stream_sip_module.c \
               src/ngx_stream_sip_ws.c \
               src/ngx_stream_sip_variables.c src/ngx_stream_sip_registrar.c \
               src/ngx_stream_sip_location.c \
               src/ngx_stream_sip_location_file.c \
               src/ngx_stream_sip_channel.c src/ngx_stream_sip_proxy.c \
               src/ngx_stream_sip_auth.c src/ngx_stream_sip_limit.c \
               src/ngx_stream_sip_flow.c src/ngx_stream_sip_ssl.c \
               src/ngx_stream_sip_table.c src/ngx_stream_sip_tx_limit.c \
               src/ngx_stream_sip_route.c src/ngx_stream_sip_nexthop.c \
               src/ngx_stream_sip_tx.c src/ngx_stream_sip_client_tx.c \
               src/ngx_stream_sip_proxy.h \
               src/ngx_stream_sip_phase.c src/ngx_stream_sip_local.c \
               src/ngx_stream_sip_delay.c \
               src/ngx_stream_sip.h src/ngx_stream_sip_compat.h \
               src/ngx_stream_sip_location.h \
               src/ngx_sip.h src/ngx_sip_ws.h
UNIT_TESTS  := $(patsubst tests/%.c,$(OBJS)/tests/%,$(wildcard tests/test_*.c))

# Everything "make test" uses: a test missing any of it fails (t/lib's
# need(); NGX_SIP_ALLOW_SKIP=1 skips instead).
DEB_PKGS    := nginx nginx-dev libnginx-mod-stream libssl-dev libpcre2-dev \
               zlib1g-dev sip-tester libnet-sip-perl clang-14 \
               libclang-rt-14-dev iproute2 util-linux procps openssl perl \
               make gcc libasan8 libio-socket-ssl-perl sipvicious kamailio \
               kamailio-tls-modules sipsak baresip linphone-cli \
               chromium nodejs npm kamailio-websocket-modules

# The npm packages of the SIP over WebSocket tests and benchmark (JsSIP,
# SIP.js, ws, puppeteer-core), pinned by t/js/package-lock.json.
JS_DIR      := $(TOP)/t/js

# nginx built from its source, the repository archives of NGINX_TARBALLS
# (nginx-1.31.4.tar.gz ...): "make test NGINX_VERSION=1.31.4" builds it
# into objs/nginx-1.31.4 with our module dynamic (objs/nginx-1.31.4-static
# with it built in: NGINX_STATIC=1) and runs the suite against it.
NGINX_TARBALLS ?= $(firstword $(wildcard $(TOP)/../shared/nginx \
                      $(TOP)/../../shared/nginx) $(TOP)/../shared/nginx)
NGINX_VERSION  ?=
NGINX_STATIC   ?=
NGINX_VERSIONS ?= $(shell ls $(NGINX_TARBALLS) 2>/dev/null | \
                      sed -n 's/^nginx-\(.*\)\.tar\.gz$$/\1/p' | sort -V)

ifneq ($(NGINX_VERSION),)
NGX_BUILD     := $(OBJS)/nginx-$(NGINX_VERSION)$(if $(NGINX_STATIC),-static)
NGINX_BIN     := $(NGX_BUILD)/objs/nginx
SIP_MODULE    := $(NGX_BUILD)/objs/ngx_stream_sip_module.so
STREAM_MODULE := $(NGX_BUILD)/objs/ngx_stream_module.so
TEST_BUILD    := nginx
else
SIP_MODULE    := $(OBJS)/ngx_stream_sip_module.so
STREAM_MODULE := /usr/lib/nginx/modules/ngx_stream_module.so
TEST_BUILD    := module
endif

UNIT_CFLAGS := -DNGX_SIP_STANDALONE -Itests -Isrc -g -O1 -Wall -Wextra \
               -Wno-unused-parameter -Wno-unused-function \
               -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined

.PHONY: all module nginx nginx-versions builds deps js-deps unit fuzz fuzz-diff \
        fuzz-ws test test-t test-asan run clean bench-registrar bench-proxy \
        bench bench-deps bench-tls bench-inflight bench-big-aor bench-ws soak

all: module

module: $(OBJS)/ngx_stream_sip_module.so

# Debian ships nginx's configure with the distribution's flags; we configure
# a private copy of it with the same flags plus the stream ones "nginx -V"
# shows, and build only our .so (building "modules" would try to rebuild
# the stream module, whose sources Debian does not ship).
# $(call ngx_configure,dir,cc options)
define ngx_configure
	@test -x $(NGINX_SRC)/configure || \
	    { echo "no $(NGINX_SRC)/configure: apt-get install nginx-dev," \
	      "or NGINX_SRC=/path/to/nginx-source"; exit 1; }
	rm -rf $(1) && mkdir -p $(dir $(1)) && cp -a $(NGINX_SRC) $(1)
	cd $(1) && \
	    if [ -f conf_flags ]; then . ./conf_flags; \
	    else NGX_CONF_FLAGS=(--with-compat); fi; \
	    stream=$$($(NGINX_BIN) -V 2>&1 | tr ' ' '\n' | \
	        grep -E '^--with-stream' | sed 's/=dynamic//' | \
	        sed 's/^--with-stream$$/--with-stream=dynamic/'); \
	    echo "$$stream" | grep -q -- '--with-stream' || \
	        stream="--with-stream=dynamic --with-stream_ssl_module"; \
	    ./configure "$${NGX_CONF_FLAGS[@]}" $$stream \
	        --with-stream=dynamic --add-dynamic-module=$(TOP) \
	        --with-cc-opt="$(2)" >configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }
endef

$(OBJS)/nginx/objs/Makefile: config
	$(call ngx_configure,$(OBJS)/nginx,-g -O2 -fPIC -Wall -Werror)

$(OBJS)/ngx_stream_sip_module.so: $(OBJS)/nginx/objs/Makefile $(MOD_SRCS)
	$(MAKE) -C $(OBJS)/nginx -f objs/Makefile objs/ngx_stream_sip_module.so
	cp $(OBJS)/nginx/objs/ngx_stream_sip_module.so $@.tmp && mv -f $@.tmp $@

# The module of "make test-asan": gcc's AddressSanitizer and UBSan, every
# pool allocation of the module its own malloc()ed block (ld --wrap to
# tests/ngx_sip_asan_pool.c), loaded into Debian's nginx through
# objs/asan/nginx.sh, which preloads libasan (docs/design.md, "Testing
# under AddressSanitizer").
ASAN_DIR    := $(OBJS)/asan
ASAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_WRAP   := -Wl,--wrap=ngx_create_pool,--wrap=ngx_palloc \
               -Wl,--wrap=ngx_pnalloc,--wrap=ngx_pcalloc
ASAN_LIB    ?= $(shell $(CC) -print-file-name=libasan.so)
ASAN_OPTS   := log_path=$(ASAN_DIR)/log/asan:detect_leaks=0
UBSAN_OPTS  := print_stacktrace=1:log_path=$(ASAN_DIR)/log/ubsan

$(ASAN_DIR)/nginx/objs/Makefile: config
	$(call ngx_configure,$(ASAN_DIR)/nginx,-g -O1 -fPIC -Wall -Werror \
	    $(ASAN_FLAGS))

$(ASAN_DIR)/ngx_stream_sip_module.so: $(ASAN_DIR)/nginx/objs/Makefile \
        $(MOD_SRCS) tests/ngx_sip_asan_pool.c
	cd $(ASAN_DIR)/nginx && $(CC) -c -fPIC -g -O1 -fno-omit-frame-pointer \
	    -Wall -Werror -I src/core -I src/event -I src/event/modules \
	    -I src/os/unix -I objs -o objs/ngx_sip_asan_pool.o \
	    $(TOP)/tests/ngx_sip_asan_pool.c
	rm -f $(ASAN_DIR)/nginx/objs/ngx_stream_sip_module.so
	$(MAKE) -C $(ASAN_DIR)/nginx -f objs/Makefile \
	    objs/ngx_stream_sip_module.so \
	    LINK='$(CC) $(ASAN_FLAGS) $(ASAN_WRAP) objs/ngx_sip_asan_pool.o'
	cp $(ASAN_DIR)/nginx/objs/ngx_stream_sip_module.so $@.tmp && mv -f $@.tmp $@

# nginx NGINX_VERSION from NGINX_TARBALLS with our module (see above).
nginx:
	@test -n "$(NGINX_VERSION)" || \
	    { echo "make nginx NGINX_VERSION=1.31.4 [NGINX_STATIC=1]"; exit 1; }
	tools/nginx-build.sh $(NGINX_VERSION) \
	    $(if $(NGINX_STATIC),static,dynamic) $(NGX_BUILD) $(NGINX_TARBALLS)

nginx-versions:
	@echo $(NGINX_VERSIONS)

# Every version of NGINX_TARBALLS, dynamic and static, with the time each
# build took (objs/builds.log); BUILDS_SKIP="1.31.4-dynamic ..." leaves
# some out.
builds:
	@rm -f $(OBJS)/builds.log; mkdir -p $(OBJS); \
	test -n "$(NGINX_VERSIONS)" || \
	    { echo "no nginx-*.tar.gz in $(NGINX_TARBALLS)"; exit 1; }; \
	for v in $(NGINX_VERSIONS); do for k in dynamic static; do \
	    case " $(BUILDS_SKIP) " in *" $$v-$$k "*) continue;; esac; \
	    start=$$(date +%s); \
	    tools/nginx-build.sh $$v $$k \
	        $(OBJS)/nginx-$$v$$([ $$k = static ] && echo -static) \
	        $(NGINX_TARBALLS) || exit 1; \
	    echo "nginx $$v $$k: built in $$(( $$(date +%s) - start ))s" | \
	        tee -a $(OBJS)/builds.log; \
	done; done

# Everything the tests and the demo need, from Debian and npm; a no-op
# when present.  A package another one installed provides counts as
# present (NodeSource's nodejs provides npm, and conflicts with Debian's).
deps:
	@provided=$$(dpkg-query -W -f '$${Provides}\n' 2>/dev/null | \
	    tr ',' '\n' | sed 's/^ *//; s/[ (].*//' | sort -u); \
	missing=""; for p in $(DEB_PKGS); do \
	    dpkg -s $$p >/dev/null 2>&1 || \
	    echo "$$provided" | grep -qx -- "$$p" || \
	    missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(MAKE) js-deps

# npm ci into t/js/node_modules, only when it is missing or older than
# the lock file.
js-deps: $(JS_DIR)/node_modules/.package-lock.json

$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund
	touch $@

$(OBJS)/tests/%: tests/%.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(OBJS)/tests
	$(CLANG) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) -lcrypto

unit: $(UNIT_TESTS)
	@rc=0; for t in $(UNIT_TESTS); do \
	    SIP_TORTURE=$(TORTURE) $$t || rc=1; done; exit $$rc

FUZZ_TIME ?= 600
fuzz:
	@mkdir -p $(OBJS)/fuzz/corpus
	$(CLANG) -DNGX_SIP_STANDALONE -Itests -Isrc -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $(OBJS)/fuzz/fuzz_parse \
	    tests/fuzz_parse.c $(CORE_SRCS) -lcrypto
	cut -f1 $(TORTURE)/verdicts.tsv | tail -n +2 | \
	    while read f; do cp $(TORTURE)/$$f $(OBJS)/fuzz/corpus/; done
	cd $(OBJS)/fuzz && ./fuzz_parse -max_total_time=$(FUZZ_TIME) \
	    -max_len=8192 corpus

# The WebSocket core: handshakes and frame streams, each fed whole and
# split at points the input chooses, which must decode alike.
fuzz-ws:
	@mkdir -p $(OBJS)/fuzz-ws/corpus
	cp tests/ws_corpus/* $(OBJS)/fuzz-ws/corpus/
	$(CLANG) -DNGX_SIP_STANDALONE -Itests -Isrc -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $(OBJS)/fuzz-ws/fuzz_ws \
	    tests/fuzz_ws.c $(CORE_SRCS) -lcrypto
	cd $(OBJS)/fuzz-ws && ./fuzz_ws -max_total_time=$(FUZZ_TIME) \
	    -max_len=4096 corpus

# The core of this tree against the one of FUZZ_BASE, linked in with its
# symbols renamed base_*: they must say the same of every input.  Seeded
# with the torture messages and the corpus of "make fuzz".
FUZZ_BASE ?= HEAD
FUZZ_DIFF := $(OBJS)/fuzz-diff
fuzz-diff:
	rm -rf $(FUZZ_DIFF) && mkdir -p $(FUZZ_DIFF)/corpus
	git archive $(FUZZ_BASE) src | tar -x -C $(FUZZ_DIFF)
	for f in $(FUZZ_DIFF)/src/ngx_sip_*.c; do \
	    $(CLANG) -DNGX_SIP_STANDALONE -Itests -I$(FUZZ_DIFF)/src -g -O1 \
	        -fsanitize=fuzzer-no-link,address,undefined \
	        -fno-sanitize-recover=undefined -c $$f \
	        -o $(FUZZ_DIFF)/base_$$(basename $$f .c).o || exit 1; done
	nm --defined-only -g $(FUZZ_DIFF)/base_*.o | \
	    awk 'NF == 3 { print $$3, "base_" $$3 }' | sort -u \
	    > $(FUZZ_DIFF)/rename
	for o in $(FUZZ_DIFF)/base_*.o; do \
	    objcopy --redefine-syms=$(FUZZ_DIFF)/rename $$o || exit 1; done
	$(CLANG) -DNGX_SIP_STANDALONE -Itests -Isrc -g -O1 \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $(FUZZ_DIFF)/fuzz_diff \
	    tests/fuzz_diff.c $(CORE_SRCS) $(FUZZ_DIFF)/base_*.o -lcrypto
	cut -f1 $(TORTURE)/verdicts.tsv | tail -n +2 | \
	    while read f; do cp $(TORTURE)/$$f $(FUZZ_DIFF)/corpus/; done
	cd $(FUZZ_DIFF) && ./fuzz_diff -max_total_time=$(FUZZ_TIME) \
	    -max_len=4096 corpus $(wildcard $(OBJS)/fuzz/corpus)

# The t/ suite runs in a private network namespace: torture messages name
# public addresses, and nothing may ever leave this machine.  TESTS: some
# of its files only.
TESTS ?= t/
test-t: $(TEST_BUILD)
	unshare -n -- bash -c 'ip link set lo up && \
	    NGX_SIP_MODULE=$(SIP_MODULE) NGX_STREAM_MODULE=$(STREAM_MODULE) \
	    NGX_SIP_NGINX=$(NGINX_BIN) SIP_TORTURE=$(TORTURE) \
	    prove -I t/lib $(TESTS)'

# The whole t/ suite with that module in Debian's nginx, which alone gets
# libasan preloaded (not perl, SIPp or Kamailio); a report of ASan or
# UBSan in any nginx process (the files of objs/asan/log) fails the run
# even where the tests passed.  TESTS="t/a.t t/b.t": only those.
test-asan: $(ASAN_DIR)/ngx_stream_sip_module.so
	@test -f "$(ASAN_LIB)" || \
	    { echo "no libasan: apt-get install gcc libasan8"; exit 1; }
	rm -rf $(ASAN_DIR)/log && mkdir -p $(ASAN_DIR)/log && \
	    chmod 1777 $(ASAN_DIR)/log
	printf '%s\n' '#!/bin/sh' \
	    'LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=$(ASAN_OPTS) \' \
	    'UBSAN_OPTIONS=$(UBSAN_OPTS) \' \
	    'exec $(NGINX_BIN) "$$@"' > $(ASAN_DIR)/nginx.sh
	chmod 755 $(ASAN_DIR)/nginx.sh
	@start=$$(date +%s); \
	unshare -n -- bash -c 'ip link set lo up && \
	    NGX_SIP_MODULE=$(ASAN_DIR)/ngx_stream_sip_module.so \
	    NGX_SIP_NGINX=$(ASAN_DIR)/nginx.sh SIP_TORTURE=$(TORTURE) \
	    NGX_SIP_ASAN=1 \
	    prove -I t/lib $(or $(TESTS),t/)'; rc=$$?; \
	echo "test-asan: prove exit $$rc, $$(( $$(date +%s) - start )) s"; \
	reports=$$(ls $(ASAN_DIR)/log); \
	if [ -n "$$reports" ]; then \
	    for f in $$reports; do echo "== $$f"; cat $(ASAN_DIR)/log/$$f; done; \
	    echo "test-asan: $$(echo $$reports | wc -w) sanitizer report(s)" \
	        "in $(ASAN_DIR)/log"; exit 1; fi; \
	echo "test-asan: no sanitizer report"; exit $$rc

# The suite twice, as built and under ASan: about 8 minutes each on
# 2 cores (docs/benchmarks.md), well within a CI job.
test: deps
	$(MAKE) unit
	$(MAKE) $(TEST_BUILD)
	$(MAKE) test-t
	$(MAKE) test-asan

run: deps module
	mkdir -p $(OBJS)/demo/logs
	sed -e "s|@MODULE@|$(OBJS)/ngx_stream_sip_module.so|" \
	    examples/demo.conf > $(OBJS)/demo/nginx.conf
	@echo "SIP registrar on udp/tcp 127.0.0.1:5060 and [::1]:5060, redirect server on udp 127.0.0.1:5070; Ctrl-C stops it"
	$(NGINX_BIN) -p $(OBJS)/demo -c nginx.conf -e stderr \
	    -g 'daemon off; pid $(OBJS)/demo/nginx.pid;'

clean:
	rm -rf $(OBJS)

# REGISTER load and shared memory per binding (docs/benchmarks.md);
# not part of "make test".
BENCH_N ?= 100000
BENCH_RATE ?= 5000
BENCH_WORKERS ?= 2
bench-registrar: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    bench/registrar.sh $(BENCH_N) $(BENCH_RATE) $(BENCH_WORKERS)'

# Calls through the proxy, CPU per call (docs/benchmarks.md).
BENCH_CALLS ?= 10000
BENCH_CPS ?= 500
bench-proxy: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    bench/proxy.sh $(BENCH_CALLS) $(BENCH_CPS) $(BENCH_WORKERS)'

# ngx_sip against Kamailio in one run, then the parser against libosip2
# (docs/benchmarks.md); not part of "make test".  BENCH_SMOKE=1: a run of
# a few seconds; BENCH_PERF=1: the calls of both servers under perf too.
BENCH_PKGS := kamailio sip-tester libosip2-dev valgrind linux-perf
bench-deps:
	@missing=""; for p in $(BENCH_PKGS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -q --no-install-recommends $$missing; \
	fi

BENCH_COMPARE_CALLS ?= 5000
BENCH_COMPARE_CPS ?= 500
bench: deps bench-deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    $(if $(BENCH_SMOKE),SMOKE=1) $(if $(BENCH_PERF),PERF=1) \
	    bench/compare.sh $(BENCH_COMPARE_CALLS) \
	    $(BENCH_COMPARE_CPS) $(BENCH_WORKERS)'
	bench/parser/run.sh $(if $(BENCH_SMOKE),-n 20000 -o 20000 -r 1)

# Memory per idle registered TLS phone (docs/benchmarks.md).
BENCH_FLOWS ?= 2000
bench-tls: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    bench/tls_flows.sh $(BENCH_FLOWS) 1'

# SIP over WebSocket against Kamailio's websocket module: memory per idle
# registered WSS client, MESSAGE rate client to client (docs/benchmarks.md).
BENCH_WS_N ?= 2000
BENCH_WS_MESSAGES ?= 20000
bench-ws: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    bench/ws.sh $(BENCH_WS_N) $(BENCH_WS_MESSAGES) $(BENCH_WORKERS)'

# Memory per in-flight INVITE transaction (docs/benchmarks.md).
bench-inflight: deps module
	unshare -n -- bash -c 'ip link set lo up && bench/inflight.sh 500 8 1'

# One AOR with thousands of bindings: INVITE and REGISTER times, and how
# long other AORs wait meanwhile (docs/benchmarks.md).
bench-big-aor: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    perl bench/big_aor.pl 1000 5000 20000'

# SOAK_COUNT requests over one TCP connection, one TLS connection and one
# UDP socket after SOAK_WARM on each; RSS of every worker at the start and
# the end, access log line lengths; fails on 2 MB of growth or a log line
# naming more than one upstream (docs/benchmarks.md).  With more than one
# worker the TCP and TLS clients send only OPTIONS (t/lib/NgxSoak.pm).
SOAK_COUNT ?= 1000000
SOAK_WARM ?= 20000
SOAK_WORKERS ?= 1
soak: deps module
	unshare -n -- bash -c 'ip link set lo up && \
	    NGX_SIP_MODULE=$(OBJS)/ngx_stream_sip_module.so \
	    NGX_SIP_NGINX=$(NGINX_BIN) \
	    bench/soak.pl $(SOAK_COUNT) $(SOAK_WORKERS) $(SOAK_WARM)'
