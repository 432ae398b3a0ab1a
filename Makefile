# cortado: thin wrapper around CMake, used by the README and CI.
#
#   make run    install missing Debian packages, build, run the example net
#   make test   install missing Debian packages, build with -Werror, ctest
#   make asan   the test suite under AddressSanitizer + UBSan
#
# Packages are installed with apt-get when running as root; otherwise the
# exact apt-get line is printed and the target fails.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
CLANG_BUILD ?= build-clang
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

# Every Debian package the build, the tests and the examples need.
DEB_PACKAGES := cmake make gcc g++ clang clang-format pkg-config python3 python3-numpy \
	libhwloc-dev libprotobuf-c-dev protobuf-c-compiler libjemalloc-dev \
	libcmocka-dev libopenblas-pthread-dev libtbb-dev liblmdb-dev \
	libclang-rt-14-dev libomp-dev

.PHONY: all deps build test run asan tsan clang fuzz clean format format-check bench-nets

all: build

# $(call install_debs,PACKAGES): apt-get installs those of PACKAGES that
# are not installed (as root), else prints the apt-get line and fails.
define install_debs
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "cortado: installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "cortado: missing Debian packages; run as root:"; \
	    echo "  apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install_debs,$(DEB_PACKAGES))

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCT_WERROR=ON $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 600

# The main job: trains an MLP on MNIST with concurrent gradient-
# accumulation scopes (see README), writing to demo-out/.
run: build
	./$(BUILD)/cortado demo

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCT_WERROR=ON \
	  -DCT_SANITIZE=address,undefined -DCT_BUILD_PERF=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) --timeout 900

# ThreadSanitizer (clang; OpenMP and jemalloc off in that build) over the
# concurrency code: scheduler, executors, stats, observers, plus a shorter
# stress run. No suppressions of our own code.
TSAN_TESTS := test_(sync|deque|event|pool|parallel_for|topology|exec_dag|net|workspace|stats.*|observer.*|time_trace|minmax|do|if_while|grad_accum|checkpoint_async)$$
tsan: deps
	CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCT_WERROR=ON -DCT_SANITIZE=thread $(CMAKE_ARGS)
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j$(JOBS) \
	  --timeout 900 -R '$(TSAN_TESTS)'
	TSAN_OPTIONS=halt_on_error=1 ./$(TSAN_BUILD)/perf/stress_sched \
	  --seeds 10 --max-nodes 2000

# The release configuration built with clang (OpenMP and jemalloc on, as a
# user's `CC=clang` build has them; the TSan build turns both off), -Werror,
# then the unit tests.
clang: deps
	CC=clang CXX=clang++ cmake -S . -B $(CLANG_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCT_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(CLANG_BUILD) -j$(JOBS)
	ctest --test-dir $(CLANG_BUILD) --output-on-failure -j$(JOBS) --timeout 600 -L unit

# libFuzzer targets (tests/fuzz/) under ASan + UBSan, FUZZ_SECONDS each.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCT_FUZZ=ON \
	  -DCT_SANITIZE=address,undefined -DCT_BUILD_PERF=OFF \
	  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_minidb fuzz_netdef
	for t in minidb netdef; do \
	  mkdir -p $(FUZZ_BUILD)/corpus_$$t && cp tests/fuzz/corpus_$$t/* $(FUZZ_BUILD)/corpus_$$t/ && \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(FUZZ_BUILD)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -rss_limit_mb=2048 -timeout=10 $(FUZZ_BUILD)/corpus_$$t || exit 1; \
	done

# The peer comparison of issue 7 (perf/bench_nets, docs/peers.md): installs
# PyTorch (Debian's python3-torch, python3-torchvision; apt-get when root)
# and ONNX Runtime (npm onnxruntime-node with --ignore-scripts, into the
# gitignored perf/peers/node_modules), builds, then runs ResNet-50 and
# SqueezeNet at batch 1 and 8, 1 and 2 threads in the three engines.
BENCH_NETS_ARGS ?=
PEER_DEB_PACKAGES := python3-torch python3-torchvision python3-numpy
bench-nets: build
	$(call install_debs,$(PEER_DEB_PACKAGES) $(if $(shell command -v npm),,nodejs npm))
	@if ! (cd perf/peers && node -e 'require("onnxruntime-node")' 2>/dev/null); then \
	  echo "cortado: installing onnxruntime-node into perf/peers/node_modules"; \
	  cd perf/peers && npm install --ignore-scripts --no-audit --no-fund \
	    --no-package-lock; \
	fi
	/usr/bin/python3 perf/bench_nets --require-peers --cortado $(BUILD)/cortado $(BENCH_NETS_ARGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
