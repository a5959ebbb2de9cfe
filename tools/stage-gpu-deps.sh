#!/usr/bin/env bash
# tools/stage-gpu-deps.sh — copies into .gpu-deps/ (git-ignored) the build dependencies that a
# bare GPU machine lacks, so `make DEPS=$PWD/.gpu-deps` builds there. The device image has nvcc,
# cuBLAS, CMake and Python with PyTorch, but no Debian -dev packages and no network, so it needs:
#   include/eigen3/            Eigen (CPU GEMM)                      from /usr/include/eigen3
#   include/gtest, gmock/      GoogleTest headers                    from /usr/include
#   lib/libgtest*.a, libgmock*.a  GoogleTest, prebuilt here (static)
#   src/googletest/            GoogleTest sources, so tools/gpu-check.sh can rebuild the libraries
#                              with the device's own compiler if the prebuilt ones do not link
#   include/stb/, lib/libstb.a stb (image decode/encode)             from libstb-dev
#   include/zlib.h, zconf.h, lib/libz.a   zlib (static only: nothing to find at run time)
#   include/archive*.h, lib/libarchive.so{,.13}  libarchive (shared: its static form would need
#                              a dozen more static libs; its run-time dependencies are NOT staged,
#                              see MANIFEST and gpu-check's env.log for what the device lacks)
# No symlinks (copies under each name), so the folder survives any file transfer.
# Idempotent: the folder is rebuilt from scratch each run. Ends by checking that the repository
# plus this folder fit the device machine's 64 MiB carry limit.
#
# Usage: tools/stage-gpu-deps.sh [--minimal] [DEST]   (DEST defaults to .gpu-deps in the repo root)
#   --minimal  only what the build needs today (Eigen without unsupported/, GoogleTest without
#              gmock): about 8 MiB less, for when the working tree grows close to the limit
set -euo pipefail

minimal=0
if [[ "${1:-}" == --minimal ]]; then minimal=1; shift; fi
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.gpu-deps}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
syslib=/usr/lib/$multiarch
limit_mib=64

say() { echo "stage-gpu-deps: $*"; }
die() { echo "stage-gpu-deps: error: $*" >&2; exit 1; }

# Copies a file (following symlinks) to a destination directory, failing loudly when absent.
need() {
    local src=$1 dir=$2
    [[ -e "$src" ]] || die "missing $src (install the Debian package that provides it: tools/install-deps.sh)"
    mkdir -p "$dir"
    cp -L "$src" "$dir/"
}

# Same, but quietly skips what is not installed (optional parts).
want() {
    local src=$1 dir=$2
    if [[ -e "$src" ]]; then
        mkdir -p "$dir"
        cp -L "$src" "$dir/"
    else
        say "note: $src not found, skipped"
    fi
}

[[ "$dest" != "/" && -n "$dest" ]] || die "refusing to stage into '$dest'"
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib" "$dest/src"

# ---- Eigen (header-only) ----
[[ -d /usr/include/eigen3/Eigen ]] || die "Eigen headers not found in /usr/include/eigen3 (apt-get install libeigen3-dev)"
cp -rL /usr/include/eigen3 "$dest/include/eigen3"
((minimal)) && rm -rf "$dest/include/eigen3/unsupported"

# ---- GoogleTest: headers, prebuilt static libraries, and the sources ----
headers=(gtest gmock)
((minimal)) && headers=(gtest)
for h in "${headers[@]}"; do
    [[ -d /usr/include/$h ]] || die "/usr/include/$h not found (apt-get install libgtest-dev libgmock-dev)"
    cp -rL "/usr/include/$h" "$dest/include/$h"
done
found_gtest=0
for f in "$syslib"/libgtest*.a "$syslib"/libgmock*.a "$syslib"/libgtest*.so* "$syslib"/libgmock*.so*; do
    [[ -e "$f" ]] || continue
    [[ $minimal == 1 && "$(basename "$f")" == libgmock* ]] && continue
    cp -L "$f" "$dest/lib/"
    [[ "$(basename "$f")" == libgtest.a ]] && found_gtest=1
done
[[ $found_gtest == 1 ]] || die "libgtest.a not found in $syslib (apt-get install libgtest-dev)"
if [[ -d /usr/src/googletest/googletest/src ]]; then
    mkdir -p "$dest/src/googletest"
    cp -rL /usr/src/googletest/googletest/include /usr/src/googletest/googletest/src "$dest/src/googletest/"
else
    say "note: /usr/src/googletest not found: gpu-check cannot rebuild GoogleTest on the device"
fi

# ---- stb ----
if ((minimal)); then
    say "--minimal: stb, zlib and libarchive not staged"
elif [[ -d /usr/include/stb ]]; then
    cp -rL /usr/include/stb "$dest/include/stb"
    want "$syslib/libstb.a" "$dest/lib"
else
    say "note: /usr/include/stb not found (apt-get install libstb-dev), skipped"
fi

# ---- zlib (static) ----
if ((!minimal)); then
    need /usr/include/zlib.h "$dest/include"
    need /usr/include/zconf.h "$dest/include"
    need "$syslib/libz.a" "$dest/lib"
fi

# ---- libarchive (headers + shared library under its link name and its soname) ----
if ((minimal)); then
    :
elif [[ -e /usr/include/archive.h ]]; then
    need /usr/include/archive.h "$dest/include"
    need /usr/include/archive_entry.h "$dest/include"
    so=$(readlink -f "$syslib/libarchive.so" 2>/dev/null || true)
    if [[ -n "$so" && -e "$so" ]]; then
        soname=$(objdump -p "$so" 2>/dev/null | awk '/SONAME/ {print $2}')
        cp "$so" "$dest/lib/libarchive.so"
        [[ -n "$soname" ]] && cp "$so" "$dest/lib/$soname"
    else
        say "note: $syslib/libarchive.so not found, skipped"
    fi
else
    say "note: /usr/include/archive.h not found (apt-get install libarchive-dev), skipped"
fi

# ---- a manifest: where each part came from, and libarchive's run-time needs ----
{
    echo "# .gpu-deps, staged $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME") by tools/stage-gpu-deps.sh"
    echo "# compiler that built the prebuilt libraries: $(g++ --version | head -1)"
    for pkg in libeigen3-dev libgtest-dev libgmock-dev googletest libstb-dev zlib1g-dev libarchive-dev; do
        v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
        [[ -n "$v" ]] && echo "$pkg $v"
    done
    if [[ -e "$dest/lib/libarchive.so" ]]; then
        echo "# libarchive.so needs at run time (not staged; present on most images except libxml2/ICU):"
        objdump -p "$dest/lib/libarchive.so" | awk '/NEEDED/ {print "#   " $2}'
    fi
} > "$dest/MANIFEST"

# ---- size check: what `run` carries is the working tree (tracked + untracked, not ignored)
#      plus this folder ----
deps_bytes=$(du -sb "$dest" | cut -f1)
tree_bytes=0
if git -C "$root" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    tree_bytes=$(cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
fi
total=$((deps_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "staged $(find "$dest" -type f | wc -l) files into $dest: $(mib "$deps_bytes")"
say "working tree (tracked + untracked, not ignored): $(mib "$tree_bytes"); total to carry $(mib "$total") of $limit_mib MiB"
if ((total > limit_mib * 1048576)); then
    die "the carry would exceed $limit_mib MiB: remove big untracked files or trim $dest"
fi
