# bnn — top-level entry points. On a fresh Debian 12 machine (as root):
#   make demo   installs what is missing, builds, trains and evaluates on Fashion-MNIST
#   make test   installs what is missing, builds, runs the test suite (also under ASan+UBSan)
# Plain `make` builds build/bnn.

BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_PORT ?= build-portable
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
DEPS = gcc make cmake pkgconf python3 python3-jsonschema python3-numpy libopenblas-dev liblapacke-dev zlib1g-dev libcjson-dev dataset-fashion-mnist

.PHONY: all deps build install test test-fast test-asan test-portable demo bench bench-torch fuzz clean format

all: build

# Installs the Debian packages bnn needs, only those that are missing.
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "error: missing packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing </dev/null || exit 1; \
	fi

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBNN_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The command, libbnn.a, bnn.h and bnn.pc (pkg-config) under PREFIX.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The whole suite, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer, then
# most of it in a portable build (no -march=native, OpenMP or OpenBLAS: the plain-C paths).
test: deps build test-fast test-asan test-portable

test-fast:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DBNN_SANITIZE=ON -DBNN_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  BNN_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

# A binary for any x86-64 or ARM CPU with no OpenMP and no BLAS GEMM (-DBNN_NATIVE=OFF
# -DBNN_OPENMP=OFF -DBNN_BLAS=OFF; LAPACKE as always): the C-loop GEMM, the plain-C Philox and
# curvature tiles, one thread. The three
# slowest CLI scripts (robust, laplace, eval: several minutes on the C loop) run in the other two.
test-portable:
	@cmake -S . -B $(BUILD_PORT) -DCMAKE_BUILD_TYPE=Release -DBNN_WERROR=ON -DBNN_NATIVE=OFF \
	  -DBNN_OPENMP=OFF -DBNN_BLAS=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_PORT) -j $(JOBS)
	cd $(BUILD_PORT) && ctest --output-on-failure -j $(JOBS) -E '^cli_(robust|laplace|eval)$$'

# The main job on the embedded default: the Fashion-MNIST MLP trained by AdamW (MAP) and by IVON
# (a Gaussian posterior over all 535,818 weights), a last-layer Laplace approximation fitted to
# the MAP network after the fact, then all three side by side on the test set and on upside-down
# test images they have never seen (each with its default predictive: the MAP network at its
# weights, Laplace's GLM probit, IVON's average over 32 weight samples).
demo: deps build
	@mkdir -p $(BUILD)/demo
	$(BUILD)/bnn train --data fmnist --model mlp:784-512-256-10 --method adamw --epochs 10 \
	  --batch-size 128 --lr 1e-3 --lr-schedule cosine --weight-decay 1e-4 --seed 0 \
	  -o $(BUILD)/demo/map.safetensors
	$(BUILD)/bnn train --data fmnist --model mlp:784-512-256-10 --method ivon --epochs 10 \
	  --batch-size 128 --lr 1.0 --ess 60000 --hess-init 0.1 --beta2 0.99999 --weight-decay 1e-4 \
	  --warmup-epochs 1 --lr-schedule cosine --seed 0 -o $(BUILD)/demo/ivon.safetensors
	$(BUILD)/bnn laplace -m $(BUILD)/demo/map.safetensors --subset last-layer --hessian kron \
	  -o $(BUILD)/demo/laplace.safetensors
	$(BUILD)/bnn compare -m $(BUILD)/demo/map.safetensors -m $(BUILD)/demo/laplace.safetensors \
	  -m $(BUILD)/demo/ivon.safetensors --ood fmnist:flip

bench: deps build
	$(BUILD)/bench_train
	$(BUILD)/bench_ivon
	$(BUILD)/bench_laplace

# bnn against PyTorch on the same machine (bench/README.md). Debian's PyTorch is large (about
# 240 packages), so only this target installs it; bnn itself never needs it.
bench-torch: deps build
	@dpkg -s python3-torch python3-numpy >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then echo "error: missing packages: python3-torch python3-numpy (run as root, or: sudo apt-get install python3-torch python3-numpy)"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy </dev/null || exit 1; }
	/usr/bin/python3 bench/torch_ref.py --bnn $(BUILD)/bnn

# libFuzzer harnesses of the readers of untrusted input (fuzz/README.md), FUZZ_SECONDS each. Needs
# clang and libFuzzer, which only this target installs.
FUZZ_SECONDS ?= 60
fuzz: deps build
	@dpkg -s clang libclang-rt-14-dev >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then echo "error: missing packages: clang libclang-rt-14-dev (run as root, or: sudo apt-get install clang libclang-rt-14-dev)"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev </dev/null || exit 1; }
	fuzz/build.sh $(BUILD)/fuzz
	fuzz/seeds.sh $(BUILD)/fuzz-corpus $(BUILD)/bnn
	fuzz/run.sh $(BUILD)/fuzz $(BUILD)/fuzz-corpus $(FUZZ_SECONDS)

format:
	clang-format -i include/*.h src/*/*.[ch] cli/*.[ch] tests/*.[ch] bench/*.c

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
