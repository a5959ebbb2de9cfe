// engine/profiler.h
// defines: the op profiler — where a step's time goes, kernel by kernel, on any backend.
// While it runs, backend_for() hands out a ProfilingBackend around the real one: each kernel call
// is timed from the host, with the device drained before and after it (Backend::synchronize), and
// added to a table keyed by the kernel, its dtypes and, for the GEMMs and attention, its shape.
// A row holds the kernel's own time: calls it makes through backend_for() (a copy, a workspace
// allocation) are in their own rows, so the rows add up to the kernels' total.
// `rankclip bench --profile` runs a few extra steps under it and prints the table
// (docs/PERFORMANCE.md, "Where the time goes"). Like torch.profiler with synchronised timing: the
// waits make a GPU step slower than the unprofiled one (each kernel also pays its launch), so
// read the table for shares, and the benchmark's own timing for speed. Memory allocation is
// timed on the host only (no drain): it is host work on every backend.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rankclip {

struct Backend;

namespace profiler {

// One row of the table: a kernel with its dtypes (and shape, for matmul, linear, attention).
struct Entry {
    std::string op;
    int64_t calls = 0;
    double seconds = 0;
    double flops = 0;  // the calls' nominal floating-point operations: GEMMs and attention, else 0
};

void start();   // clears the table and starts timing every kernel
void stop();    // stops timing; the table stays until the next start()
bool active();
// The rows, most time first.
std::vector<Entry> entries();
// The table for `steps` profiled steps that took `wall_seconds` in all: per step the calls and
// milliseconds of the `top` most expensive rows, then a roll-up by kernel family (the row's first
// word: matmul, attention, copy, ...), then the kernels' total against the wall time; the rest
// of the wall time is the host's work between kernels (autograd, tensor bookkeeping). Rows with
// floating-point work (GEMMs: 2 M N K; attention: 4 B H Tq Tk D forward, 8 backward, its
// products as plain GEMMs, causal or not) end with their GFLOP/s, and a last line gives those
// kernels' GFLOP per step and rate: what to hold against the machine's peak.
std::string report(int64_t steps, double wall_seconds, size_t top = 30);

// The profiling wrapper of `inner` while active() (backend_for calls this), else `inner`.
Backend& wrap(Backend& inner);

}  // namespace profiler
}  // namespace rankclip
