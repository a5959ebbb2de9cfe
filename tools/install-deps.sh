#!/usr/bin/env bash
# tools/install-deps.sh — installs the Debian packages rankclip.cpp needs to build, test and
# benchmark. Idempotent: installs only what is missing. Run as root (or with sudo available).
#   build:      g++ make libeigen3-dev libgtest-dev libstb-dev zlib1g-dev libarchive-dev
#               libdnnl-dev (oneDNN: the CPU GEMM, AMX bf16) libsleef-dev (SLEEF: vector math)
#   benchmark:  libopenblas0-pthread (the BLAS PyTorch runs on in `make bench`; Debian's default is
#               the netlib reference BLAS, which no one trains with), libtcmalloc-minimal4 (the
#               allocator PyTorch's CPU guides advise; tools/torch_env.py preloads it for the twins)
#   references: python3-torch python3-numpy python3-pil (only tools/ scripts and `make bench` use Python)
#   data:       dataset-fashion-mnist (Fashion-MNIST idx files, for evaluation and experiments)
#   several processes: libopenmpi-dev openmpi-bin (OpenMPI: dist/, docs/DISTRIBUTED.md; optional,
#               the one-process build and tests work without it)
#   guards:     clang libclang-rt-14-dev (libFuzzer: libclang_rt.fuzzer-x86_64.a) libomp-dev (OpenMP for
#               clang), for `make fuzz`; `make sanitize` needs only g++ (docs/RELIABILITY.md)
set -euo pipefail
packages=(g++ make libeigen3-dev libgtest-dev libstb-dev zlib1g-dev libarchive-dev libdnnl-dev libsleef-dev
          libopenblas0-pthread libtcmalloc-minimal4 python3-torch python3-numpy python3-pil
          dataset-fashion-mnist libopenmpi-dev openmpi-bin clang libclang-rt-14-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# python3-torch is large; if it cannot be had, the build and tests still work (only the
# PyTorch side of `make bench` and the reference generators need it); without clang and its
# libFuzzer runtime only `make fuzz` is missing (it says so)
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    optional=(libopenblas0-pthread libtcmalloc-minimal4 python3-torch python3-numpy python3-pil dataset-fashion-mnist
              libopenmpi-dev openmpi-bin clang libclang-rt-14-dev libomp-dev)
    required=()
    for p in "${missing[@]}"; do [[ " ${optional[*]} " == *" $p "* ]] || required+=("$p"); done
    echo "install-deps: retrying without optional packages"
    [ ${#required[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${required[@]}"
fi
