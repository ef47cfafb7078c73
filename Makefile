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
               src/ngx_sip_forward.c src/ngx_sip_auth.c
CORE_HDRS   := src/ngx_sip.h tests/ngx_sip_standalone.h tests/ngx_sip_test.h
MOD_SRCS    := $(CORE_SRCS) src/ngx_stream_sip_module.c \
               src/ngx_stream_sip_variables.c src/ngx_stream_sip_registrar.c \
               src/ngx_stream_sip_channel.c src/ngx_stream_sip_proxy.c \
               src/ngx_stream_sip_auth.c src/ngx_stream_sip_limit.c \
               src/ngx_stream_sip_flow.c src/ngx_stream_sip_ssl.c \
               src/ngx_stream_sip_table.c \
               src/ngx_stream_sip.h src/ngx_sip.h
UNIT_TESTS  := $(patsubst tests/%.c,$(OBJS)/tests/%,$(wildcard tests/test_*.c))

DEB_PKGS    := nginx nginx-dev libnginx-mod-stream libssl-dev libpcre2-dev \
               zlib1g-dev sip-tester libnet-sip-perl clang-14 \
               libclang-rt-14-dev iproute2 util-linux openssl perl make gcc \
               libio-socket-ssl-perl sipvicious kamailio \
               baresip linphone-cli sipsak

UNIT_CFLAGS := -DNGX_SIP_STANDALONE -Itests -Isrc -g -O1 -Wall -Wextra \
               -Wno-unused-parameter -Wno-unused-function \
               -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined

.PHONY: all module deps unit fuzz fuzz-diff test test-t run clean bench-registrar \
        bench-proxy bench bench-deps bench-tls bench-inflight

all: module

module: $(OBJS)/ngx_stream_sip_module.so

# Debian ships nginx's configure with the distribution's flags; we configure
# a private copy of it with the same flags plus the stream ones "nginx -V"
# shows, and build only our .so (building "modules" would try to rebuild
# the stream module, whose sources Debian does not ship).
$(OBJS)/nginx/objs/Makefile: config
	@test -x $(NGINX_SRC)/configure || \
	    { echo "no $(NGINX_SRC)/configure: apt-get install nginx-dev," \
	      "or NGINX_SRC=/path/to/nginx-source"; exit 1; }
	rm -rf $(OBJS)/nginx && mkdir -p $(OBJS) && \
	    cp -a $(NGINX_SRC) $(OBJS)/nginx
	cd $(OBJS)/nginx && \
	    if [ -f conf_flags ]; then . ./conf_flags; \
	    else NGX_CONF_FLAGS=(--with-compat); fi; \
	    stream=$$($(NGINX_BIN) -V 2>&1 | tr ' ' '\n' | \
	        grep -E '^--with-stream' | sed 's/=dynamic//' | \
	        sed 's/^--with-stream$$/--with-stream=dynamic/'); \
	    echo "$$stream" | grep -q -- '--with-stream' || \
	        stream="--with-stream=dynamic --with-stream_ssl_module"; \
	    ./configure "$${NGX_CONF_FLAGS[@]}" $$stream \
	        --with-stream=dynamic --add-dynamic-module=$(TOP) \
	        --with-cc-opt="-g -O2 -fPIC -Wall -Werror" >configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(OBJS)/ngx_stream_sip_module.so: $(OBJS)/nginx/objs/Makefile $(MOD_SRCS)
	$(MAKE) -C $(OBJS)/nginx -f objs/Makefile objs/ngx_stream_sip_module.so
	cp $(OBJS)/nginx/objs/ngx_stream_sip_module.so $@

# Everything the tests and the demo need, from Debian; a no-op when present.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -q --no-install-recommends $$missing; \
	fi

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
# public addresses, and nothing may ever leave this machine.
test-t: module
	unshare -n -- bash -c 'ip link set lo up && \
	    NGX_SIP_MODULE=$(OBJS)/ngx_stream_sip_module.so \
	    NGX_SIP_NGINX=$(NGINX_BIN) SIP_TORTURE=$(TORTURE) \
	    prove -I t/lib t/'

test: deps
	$(MAKE) unit
	$(MAKE) module
	$(MAKE) test-t

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

# Memory per in-flight INVITE transaction (docs/benchmarks.md).
bench-inflight: deps module
	unshare -n -- bash -c 'ip link set lo up && bench/inflight.sh 500 8 1'
