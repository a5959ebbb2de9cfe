#!/usr/bin/env bash
# tools/stage-gpu-deps.sh — copies into .gpu-deps/ (git-ignored) the build dependencies that a
# bare GPU machine lacks, so `make DEPS=$PWD/.gpu-deps` builds there. The device image has nvcc,
# cuBLAS, CMake and Python with PyTorch, but no Debian -dev packages and no network, so it needs:
#   include/eigen3/            Eigen/Core and what it reads (the F64 GEMM) from /usr/include/eigen3
#   include/gtest/             GoogleTest headers (gmock is not used) from /usr/include
#   lib/libgtest*.a            GoogleTest, prebuilt here (static)
#   src/googletest/            GoogleTest sources, so tools/gpu-check.sh can rebuild the libraries
#                              with the device's own compiler if the prebuilt ones do not link
#   include/stb/, lib/libstb.a stb (image decode/encode)             from libstb-dev
#   include/zlib.h, zconf.h, lib/libz.a   zlib (static only: nothing to find at run time)
#   include/archive*.h, lib/libarchive.so.13.x  libarchive (shared: its static form would need
#                              a dozen more static libs), with the links libarchive.so.13 (soname)
#                              and libarchive.so (link name)
#   lib/<its run-time deps>    every shared library libarchive.so loads (ldd here) except glibc,
#                              libstdc++ and libgcc_s, which come with the device's own compiler:
#                              nettle, acl, lzma, zstd, lz4, bz2, z, xml2 and ICU; each as its real
#                              file plus its soname link. ICU's 30 MiB data library is stored as
#                              lib/libicudata.so.N.xz (7 MiB) to fit the carry limit.
#   include/oneapi/dnnl, dnnl*.h, sleef.h; lib/libdnnl.so.2.xz (oneDNN, the CPU GEMM; 40 MiB packed
#                              to 7), lib/libsleef.so.3 (+ libsleef.so), libOpenCL.so.1 (oneDNN loads it)
#   lib/libtcmalloc_minimal.so.4  the allocator the PyTorch twins run on (tools/torch_env.py)
#   lib/RUNTIME                those libraries (libarchive first), one a line: soname and staged
#                              file. tools/gpu-check.sh puts the ones the device lacks on
#                              LD_LIBRARY_PATH (and -rpath-link), unpacking the .xz one if needed
# Links are relative, within lib/ (the device tool carries a link as a link). The MANIFEST says
# which package and version each part came from and the newest glibc / libstdc++ symbol versions
# the staged libraries need (the device must have at least those).
# Idempotent: the folder is rebuilt from scratch each run. Ends by checking with ldd that
# libarchive.so resolves every staged library from the staged copies, and that the repository
# plus this folder fit the device machine's 64 MiB carry limit.
#
# Usage: tools/stage-gpu-deps.sh [--minimal] [DEST]   (DEST defaults to .gpu-deps in the repo root)
#   --minimal  Eigen and GoogleTest only (no stb, zlib, libarchive, oneDNN or SLEEF): a partial
#              stage, for trying the GPU build's first steps when the working tree grows too big
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
# Only what <Eigen/Core> reads (the one Eigen header the build includes): its dense core, the
# plugins and misc/blas.h; the solvers, sparse and geometry modules would take 3 MB of the
# carry's 64 MiB.
mkdir -p "$dest/include/eigen3/Eigen/src/misc"
cp -L /usr/include/eigen3/Eigen/Core "$dest/include/eigen3/Eigen/"
cp -rL /usr/include/eigen3/Eigen/src/Core /usr/include/eigen3/Eigen/src/plugins "$dest/include/eigen3/Eigen/src/"
cp -L /usr/include/eigen3/Eigen/src/misc/blas.h "$dest/include/eigen3/Eigen/src/misc/"

# ---- GoogleTest: headers, prebuilt static libraries, and the sources ----
headers=(gtest gmock)
headers=(gtest)  # the tests use GoogleTest only, not gmock
for h in "${headers[@]}"; do
    [[ -d /usr/include/$h ]] || die "/usr/include/$h not found (apt-get install libgtest-dev libgmock-dev)"
    cp -rL "/usr/include/$h" "$dest/include/$h"
done
found_gtest=0
for f in "$syslib"/libgtest*.a "$syslib"/libgmock*.a "$syslib"/libgtest*.so* "$syslib"/libgmock*.so*; do
    [[ -e "$f" ]] || continue
    [[ "$(basename "$f")" == libgmock* ]] && continue
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

# ---- libarchive (headers + shared library, its soname and link name) and its run-time deps ----
soname_of() { objdump -p "$1" 2>/dev/null | awk '/SONAME/ {print $2}'; }
# Stages shared library $1 (any path or link to it) as its real file plus a relative link under
# name $2 (its soname) when that differs; big files (> 16 MiB) are stored xz-compressed instead,
# as <real name>.xz, for gpu-check to unpack (the link is then left to it). Appends $2 to RUNTIME.
stage_so() {
    local src=$1 name=$2 real base
    real=$(readlink -f "$src")
    base=$(basename "$real")
    if (($(stat -c %s "$real") > 16 * 1048576)); then
        xz -T0 -6 -c "$real" > "$dest/lib/$base.xz"
        echo "$name $base.xz" >> "$dest/lib/RUNTIME"
        return
    fi
    cp "$real" "$dest/lib/$base"
    [[ "$name" != "$base" ]] && ln -sfn "$base" "$dest/lib/$name"
    echo "$name $base" >> "$dest/lib/RUNTIME"
}
# What every machine with a C++ compiler has, and what must match the device's own libc: not staged.
not_staged_re='^(linux-vdso|linux-gate|ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libmvec|libstdc\+\+|libgcc_s)\.so'
runtime_libs=()
if ((minimal)); then
    :
elif [[ -e /usr/include/archive.h ]]; then
    need /usr/include/archive.h "$dest/include"
    need /usr/include/archive_entry.h "$dest/include"
    so=$(readlink -f "$syslib/libarchive.so" 2>/dev/null || true)
    if [[ -n "$so" && -e "$so" ]]; then
        command -v xz > /dev/null || die "xz not found (apt-get install xz-utils): needed to pack ICU's data"
        : > "$dest/lib/RUNTIME"
        stage_so "$so" "$(soname_of "$so")"
        ln -sfn "$(basename "$so")" "$dest/lib/libarchive.so"
        # ldd lists the whole closure (ICU's libicudata too), by soname => resolved path
        while read -r name path; do
            [[ "$name" =~ $not_staged_re ]] && continue
            [[ -e "$path" ]] || die "ldd: $name of libarchive.so not found here"
            stage_so "$path" "$name"
            runtime_libs+=("$name")
        done < <(ldd "$so" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
        say "libarchive's run-time libraries staged: ${runtime_libs[*]:-none}"
    else
        say "note: $syslib/libarchive.so not found, skipped"
    fi
else
    say "note: /usr/include/archive.h not found (apt-get install libarchive-dev), skipped"
fi

# ---- oneDNN (the CPU GEMM) and SLEEF (vector math): headers, shared libraries, link names ----
# libdnnl.so.2 (40 MiB) goes xz-packed like ICU's data; it loads libOpenCL.so.1 (its unused GPU
# runtime) and libgomp (the compiler's). gpu-check links lib/libsleef.so directly and makes the
# libdnnl.so link itself after unpacking.
engine_libs=()
if ((!minimal)); then
    for h in /usr/include/dnnl.h /usr/include/dnnl.hpp /usr/include/dnnl_config.h /usr/include/dnnl_types.h \
             /usr/include/dnnl_version.h /usr/include/dnnl_debug.h; do
        want "$h" "$dest/include"
    done
    [[ -d /usr/include/oneapi/dnnl ]] || die "/usr/include/oneapi/dnnl not found (apt-get install libdnnl-dev)"
    mkdir -p "$dest/include/oneapi"
    cp -rL /usr/include/oneapi/dnnl "$dest/include/oneapi/dnnl"
    need "/usr/include/$multiarch/sleef.h" "$dest/include"
    [[ -e "$dest/lib/RUNTIME" ]] || : > "$dest/lib/RUNTIME"
    for lib in libdnnl.so libsleef.so; do
        so=$(readlink -f "$syslib/$lib" 2>/dev/null || true)
        [[ -n "$so" && -e "$so" ]] || die "$syslib/$lib not found (apt-get install libdnnl-dev libsleef-dev)"
        stage_so "$so" "$(soname_of "$so")"
        engine_libs+=("$(soname_of "$so")")
    done
    ln -sfn "$(basename "$(readlink -f "$syslib/libsleef.so")")" "$dest/lib/libsleef.so"
    while read -r name path; do  # what libdnnl loads beyond libc, libstdc++ and libgomp
        [[ "$name" =~ $not_staged_re || "$name" == libgomp.so* ]] && continue
        grep -q "^$name " "$dest/lib/RUNTIME" || { stage_so "$path" "$name"; engine_libs+=("$name"); }
    done < <(ldd "$(readlink -f "$syslib/libdnnl.so")" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
    say "oneDNN and SLEEF staged: ${engine_libs[*]}"
    # tcmalloc, which tools/torch_env.py preloads into the PyTorch twins (the device's PyTorch
    # comes without it); optional: without it the twins run on glibc's malloc and say so
    so=$(readlink -f "$syslib/libtcmalloc_minimal.so.4" 2>/dev/null || true)
    if [[ -n "$so" && -e "$so" ]]; then
        stage_so "$so" libtcmalloc_minimal.so.4
        engine_libs+=(libtcmalloc_minimal.so.4)
    else
        say "note: $syslib/libtcmalloc_minimal.so.4 not found (apt-get install libtcmalloc-minimal4): the device's twins will run on glibc's malloc"
    fi
fi

# ---- a manifest: where each part came from, and libarchive's run-time needs ----
{
    echo "# .gpu-deps, staged $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME") by tools/stage-gpu-deps.sh"
    echo "# compiler that built the prebuilt libraries: $(g++ --version | head -1)"
    for pkg in libeigen3-dev libgtest-dev libgmock-dev googletest libstb-dev zlib1g-dev libarchive-dev libdnnl-dev \
               libsleef-dev libtcmalloc-minimal4; do
        v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
        [[ -n "$v" ]] && echo "$pkg $v"
    done
    if [[ -e "$dest/lib/RUNTIME" ]]; then
        echo "# shared libraries staged in lib/ (soname, file, package version): libarchive and what it loads,"
        echo "# then oneDNN, SLEEF and what oneDNN loads"
        while read -r name file; do
            # dpkg knows a file by the path its package installed it at (/usr/lib or /lib)
            pkg=""
            for path in "$(readlink -f "$syslib/$name")" "$syslib/$name" "/lib/$multiarch/$name"; do
                pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
                [[ -n "$pkg" ]] && break
            done
            v=""
            [[ -n "$pkg" ]] && v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
            echo "$name $file ${pkg:-?} ${v:-?}"
        done < "$dest/lib/RUNTIME"
        # the newest symbol versions they need from what is not staged (the device's libc, libstdc++)
        need_glibc=$(for f in "$dest"/lib/*.so*; do [[ $f == *.xz || -L $f ]] || objdump -T "$f"; done 2>/dev/null |
            grep -oE '\(GLIBC_[0-9.]+\)' | tr -d '()' | sort -V -u | tail -1)
        need_cxx=$(for f in "$dest"/lib/*.so*; do [[ $f == *.xz || -L $f ]] || objdump -T "$f"; done 2>/dev/null |
            grep -oE '\(GLIBCXX_[0-9.]+\)' | tr -d '()' | sort -V -u | tail -1)
        echo "# needs from the device: glibc >= ${need_glibc#GLIBC_} ($need_glibc), libstdc++ with ${need_cxx:-nothing} (not staged)"
    fi
} > "$dest/MANIFEST"

# ---- check: libarchive.so resolves every staged library from the staged copies ----
if [[ -e "$dest/lib/RUNTIME" ]]; then
    check=$(mktemp -d)
    trap 'rm -rf "$check"' EXIT
    while read -r name file; do  # what gpu-check does on the device when the system has none of them
        if [[ $file == *.xz ]]; then xz -dc "$dest/lib/$file" > "$check/$name"; else ln -s "$dest/lib/$name" "$check/$name"; fi
    done < "$dest/lib/RUNTIME"
    resolved=$(LD_LIBRARY_PATH=$check ldd "$dest/lib/libarchive.so"
               for lib in "${engine_libs[@]}"; do echo "$lib => $check/$lib"; LD_LIBRARY_PATH=$check ldd "$check/$lib"; done)
    bad=0
    while read -r name file; do
        [[ $name == libarchive.so* ]] && continue
        where=$(awk -v n="$name" '$1 == n {print $3; exit}' <<< "$resolved")
        if [[ "$where" != "$check/$name" ]]; then
            echo "stage-gpu-deps: $name resolves to '${where:-nothing}', not the staged copy" >&2
            bad=1
        fi
    done < "$dest/lib/RUNTIME"
    if grep -q 'not found' <<< "$resolved"; then
        echo "$resolved" >&2
        bad=1
    fi
    ((bad)) && die "the staged libarchive does not resolve its libraries from the staged copies"
    say "ldd check: libarchive.so, oneDNN and SLEEF find all $(($(wc -l < "$dest/lib/RUNTIME") - 1)) staged libraries in the staged copies"
fi

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
