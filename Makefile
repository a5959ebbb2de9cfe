# rankclip.cpp build.
#   make          build the library, the `rankclip` tool, the tests and the benchmark
#   make test     run the test suite (GPU tests skip without a GPU)
#   make bench    run the benchmarks (ours, then PyTorch's when python3-torch is installed)
#   make demo     install dependencies, build, run the main job
#   make cuda     build with the CUDA backend (autodetected when nvcc is found; CUDA=0 disables)
#   make gpu-check  on a GPU machine: build with CUDA, run CUDA tests and GPU benchmarks
#   make sanitize   the tests built with ASan + UBSan (build-sanitize/, CUDA=0); docs/RELIABILITY.md
#   make fuzz       a libFuzzer harness per parser (clang), each run FUZZ_SECONDS (default 60)
#   make clean
CXX      ?= g++
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
JOBS     ?= $(shell nproc)
DEPS     ?= /usr
CXXFLAGS ?= -O2 -march=native
CXXFLAGS += -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -MMD -MP -I. -isystem $(DEPS)/include/eigen3 -I$(DEPS)/include
LDFLAGS  += -fopenmp -L$(DEPS)/lib -L$(DEPS)/lib/x86_64-linux-gnu
LDLIBS   += -lpthread -lz -larchive -ldnnl -lsleef
# instrumentation flags for compiling and linking (set by `make sanitize` and `make fuzz`)
SANITIZE_FLAGS ?=
CXXFLAGS += $(SANITIZE_FLAGS)
LDFLAGS  += $(SANITIZE_FLAGS)

# ---- CUDA backend: on when nvcc exists, unless CUDA=0 ----
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA      ?= $(if $(wildcard $(NVCC)),1,0)
USE_CUDNN ?= 0
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

ENGINE_SRC := $(wildcard engine/*.cpp engine/cpu/*.cpp engine/ops/*.cpp)
LIB_SRC    := $(ENGINE_SRC) $(wildcard nn/*.cpp models/*.cpp train/*.cpp eval/*.cpp report/*.cpp data/*.cpp)
CUDA_SRC   := $(wildcard cuda/*.cu)
CUDA_CPP   := $(wildcard cuda/*.cpp)
TEST_SRC   := $(wildcard tests/*.cpp)

# ---- dist/ (docs/DISTRIBUTED.md): MPI when mpicxx (OpenMPI) is found, unless MPI=0; NCCL with
# the CUDA backend when nccl.h is found, unless NCCL=0. Without them, the one-process stand-ins.
MPICXX   ?= mpicxx
MPI      ?= $(if $(shell command -v $(MPICXX) 2>/dev/null),1,0)
NCCL     ?= $(if $(filter 1,$(CUDA)),$(if $(wildcard $(CUDA_HOME)/include/nccl.h),1,0),0)
LIB_SRC  += dist/comm.cpp dist/all_gather.cpp dist/gradients.cpp
ifeq ($(MPI),1)
LIB_SRC  += dist/mpi_comm.cpp
CXXFLAGS += $(shell $(MPICXX) --showme:compile)
LDLIBS   += $(shell $(MPICXX) --showme:link)
MPI_TESTS := $(BUILD)/dist_mpi_test
else
LIB_SRC  += dist/no_mpi.cpp
endif
ifeq ($(NCCL),1)
LIB_SRC  += dist/nccl_comm.cpp
LDFLAGS  += -Wl,-rpath,$(CUDA_HOME)/lib
LDLIBS   += -lnccl
else
LIB_SRC  += dist/no_nccl.cpp
endif

ifeq ($(CUDA),1)
CXXFLAGS += -DRANKCLIP_CUDA -I$(CUDA_HOME)/include
NVCCFLAGS ?= -O2 -std=c++17 $(CUDA_ARCH) -I. -Xcompiler -fopenmp -DRANKCLIP_CUDA --expt-relaxed-constexpr -MMD -MP
LDFLAGS  += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -Wl,-rpath,$(CUDA_HOME)/lib64
# The CUDA backend registers itself from a static initialiser in cuda/device.cpp, which nothing
# references: this keeps that object (and the registration) in every program (see there).
LDFLAGS  += -Wl,--undefined=rankclip_cuda_backend_registered
LDLIBS   += -lcudart -lcublas -lcublasLt
LIB_SRC  += $(CUDA_CPP)
ifeq ($(USE_CUDNN),1)
CXXFLAGS += -DRANKCLIP_CUDNN
NVCCFLAGS += -DRANKCLIP_CUDNN
LDLIBS   += -lcudnn
endif
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.cu.o)
else
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
endif
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/%.o)

LIB   := $(BUILD)/librankclip.a
TOOL  := $(BUILD)/rankclip
TESTS := $(BUILD)/run_tests
BENCH := $(BUILD)/bench_engine
BENCH_MODELS := $(BUILD)/bench_models
BENCH_LOADER := $(BUILD)/bench_loader

.PHONY: all test bench demo cuda gpu-check clean deps sanitize fuzz fuzz-build fuzz-bins
all: $(LIB) $(TOOL) $(TESTS) $(BENCH) $(BENCH_MODELS) $(BENCH_LOADER)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

TOOL_OBJ := $(patsubst %.cpp,$(BUILD)/%.o,tools/rankclip.cpp $(wildcard tools/cmd_*.cpp))
$(TOOL): $(TOOL_OBJ) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ -lgtest -lgtest_main $(LDLIBS)

$(MPI_TESTS): $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tests/mpi/*.cpp)) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ -lgtest $(LDLIBS)

$(BENCH): $(BUILD)/bench/bench_engine.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH_MODELS): $(BUILD)/bench/bench_models.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH_LOADER): $(BUILD)/bench/bench_loader.o $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

test:
	$(MAKE) -j$(JOBS) $(TESTS) $(TOOL) $(MPI_TESTS)
	RANKCLIP_MPI_TESTS=$(MPI_TESTS) tools/run-tests.sh $(TESTS)

bench: $(BENCH) $(BENCH_MODELS) $(BENCH_LOADER)
	tools/run-bench.sh $(BENCH) $(PYTHON)

demo: deps
	$(MAKE) -j$(JOBS) $(TOOL)
	$(TOOL) demo

deps:
	tools/install-deps.sh

cuda:
	$(MAKE) CUDA=1

gpu-check:
	tools/gpu-check.sh

# ---- guards against hostile input (docs/RELIABILITY.md) ----
# sanitize: the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer. Reports
# from Debian's libraries are suppressed by name in tests/sanitize/*.supp; any other report fails.
# SANITIZE_TESTS=parsers: only the suites of the file formats and parsers (PARSER_TESTS), linked
# with the engine and data/ alone: a third of the build, for a quick check.
# SANITIZE_FILTER: a gtest filter (default: every test).
SAN_BUILD  ?= build-sanitize
# The kinds of the library reports tests/sanitize/ubsan.supp names are recoverable, so that the
# suppressions apply; halt_on_error=1 (tools/run-sanitize.sh, tools/run-fuzz.sh) still stops at
# any report not suppressed
SAN_RECOVER := -fsanitize-recover=shift-base,signed-integer-overflow
SAN_FLAGS  := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
              $(SAN_RECOVER)
SANITIZE_TESTS  ?= all
SANITIZE_FILTER ?= *
PARSER_TESTS   := $(wildcard tests/test_json.cpp tests/test_safetensors.cpp tests/test_npy.cpp \
    tests/test_tokenizer.cpp tests/test_bpe_trainer.cpp tests/test_image.cpp tests/test_datasets.cpp \
    tests/test_fuzz_regressions.cpp tests/test_parse_option.cpp)
PARSER_LIB_SRC := $(ENGINE_SRC) $(wildcard data/*.cpp models/clip_config.cpp)
PARSER_LIB     := $(BUILD)/libparsers.a
$(PARSER_LIB): $(PARSER_LIB_SRC:%.cpp=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/run_parser_tests: $(PARSER_TESTS:%.cpp=$(BUILD)/%.o) $(PARSER_LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ -lgtest -lgtest_main $(LDLIBS)
SAN_TARGETS := $(if $(filter parsers,$(SANITIZE_TESTS)),$(SAN_BUILD)/run_parser_tests,$(SAN_BUILD)/run_tests $(SAN_BUILD)/rankclip)
sanitize:
	$(MAKE) -j$(JOBS) CUDA=0 BUILD=$(SAN_BUILD) SANITIZE_FLAGS="$(SAN_FLAGS)" $(SAN_TARGETS)
	tools/run-sanitize.sh $(firstword $(SAN_TARGETS)) --gtest_filter='$(SANITIZE_FILTER)'

# fuzz: one libFuzzer harness per parser (tests/fuzz/fuzz_*.cpp), built with clang++ and
# coverage + ASan + UBSan in build-fuzz/, each run FUZZ_SECONDS from the seeds in
# tests/fuzz/corpus/<target>/. FUZZ_TARGETS picks some; a crash fails the target.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
                $(SAN_RECOVER)
FUZZ_SECONDS ?= 60
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BIN     := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_ALL))
# The library sources the harnesses link (the parsers and what they pull in: tensors, the CPU
# kernels, the synthetic vocabulary), not the whole library, so the instrumented build stays short.
# A harness that fails to link after a dependency changed: add the missing file here.
FUZZ_LIB_SRC := $(wildcard engine/atomic_file.cpp engine/autograd.cpp engine/backend.cpp engine/json.cpp engine/parallel.cpp \
    engine/profiler.cpp \
    engine/random.cpp engine/safetensors.cpp engine/shape.cpp engine/tensor.cpp engine/strings.cpp \
    engine/cpu/*.cpp engine/ops/creation.cpp engine/ops/elementwise.cpp engine/ops/indexing.cpp \
    engine/ops/reduce.cpp engine/ops/views.cpp data/bpe_trainer.cpp data/csv_dataset.cpp data/dataset.cpp \
    data/gzip.cpp data/image.cpp data/image_write.cpp data/npy.cpp data/packed.cpp data/raster.cpp \
    data/strings.cpp data/shard_pattern.cpp data/synthetic.cpp data/tar_dataset.cpp data/tokenizer.cpp)
FUZZ_LIB     := $(BUILD)/libfuzzdeps.a
$(FUZZ_LIB): $(FUZZ_LIB_SRC:%.cpp=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
.PRECIOUS: $(BUILD)/tests/fuzz/%.o
fuzz-bins: $(FUZZ_BIN)
fuzz-build:
	@tools/run-fuzz.sh --check $(FUZZ_CXX)
	$(MAKE) -j$(JOBS) CUDA=0 CXX=$(FUZZ_CXX) BUILD=$(FUZZ_BUILD) SANITIZE_FLAGS="$(FUZZ_FLAGS)" fuzz-bins
fuzz: fuzz-build
	tools/run-fuzz.sh --run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
