// engine/random.h
// defines: Generator, the engine's seeded random generator. After manual_seed(s) its draws are
// bit-identical to PyTorch's CPU generator after torch.manual_seed(s) (checked against torch 1.13
// on x86-64 with AVX2 by tests/test_random.cpp), so a model initialised from a seed equals
// PyTorch's. It is MT19937 plus PyTorch's recipes for turning 32-bit words into numbers:
//   fill_normal   = torch.randn / Tensor.normal_   fill_uniform = torch.rand / Tensor.uniform_
//   fill_randint  = torch.randint(low, high)       randperm     = torch.randperm
// Each fill is one contiguous tensor of n elements; the draw order between calls is PyTorch's.
// "PyTorch" here means its AVX2 kernels, which x86-64 CPUs with AVX2 run: torch built or forced
// without them (ATEN_CPU_CAPABILITY=default, non-x86) rounds normal/uniform draws differently.
// A Generator is not thread-safe: use one per thread, or lock around it.
#pragma once
#include <cstdint>
#include <vector>

namespace rankclip {

class Generator {
public:
    static constexpr int kStateWords = 624;   // MT19937 state size (32-bit words)

    explicit Generator(uint64_t seed = 0);

    // Re-seed: the MT state is initialised from the low 32 bits (as PyTorch does), seed()
    // returns all 64, and a cached normal sample is dropped.
    void manual_seed(uint64_t seed);
    uint64_t seed() const { return seed_; }

    // Raw draws: one MT19937 word; two words combined as (first << 32) | second.
    uint32_t random();
    uint64_t random64();

    // out[0..n) ~ N(mean, std^2). float, n >= 16: PyTorch's vectorised Box-Muller (uniforms
    // first, then blocks of 16, the last partial block redrawn). Otherwise: one scalar
    // Box-Muller in double per element, whose second value is cached in the generator.
    void fill_normal(float* out, int64_t n, double mean = 0.0, double std = 1.0);
    void fill_normal(double* out, int64_t n, double mean = 0.0, double std = 1.0);
    // out[0..n) ~ U[from, to): float from 24 random bits of one word, double from 53 bits of two.
    void fill_uniform(float* out, int64_t n, double from = 0.0, double to = 1.0);
    void fill_uniform(double* out, int64_t n, double from = 0.0, double to = 1.0);
    // out[0..n) uniform integers in [low, high): low + word % (high - low), with a 64-bit word
    // when high - low >= 2^32.
    void fill_randint(int64_t* out, int64_t n, int64_t low, int64_t high);
    // out[0..n) = a random permutation of 0..n-1 (PyTorch's forward Fisher-Yates on 32-bit words).
    void randperm(int64_t* out, int64_t n);

    // Everything needed to resume the exact sequence: seed, MT state and position, cached
    // normal sample. set_state throws rankclip::Error on a state of the wrong size or contents.
    std::vector<uint8_t> get_state() const;
    void set_state(const std::vector<uint8_t>& state);

private:
    void twist();                       // refill mt_ with the next 624 words
    double next_normal(double mean, double std);   // scalar Box-Muller with the cached sample

    uint64_t seed_ = 0;
    uint32_t mt_[kStateWords];
    int pos_ = kStateWords;             // next word of mt_ to hand out; kStateWords: twist first
    bool has_next_normal_ = false;      // the second Box-Muller value of the last scalar draw
    double next_normal_ = 0.0;          //   (unscaled, N(0, 1)), used by the next scalar draw
};

}  // namespace rankclip
