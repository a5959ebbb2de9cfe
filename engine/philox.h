// engine/philox.h
// defines: philox4x32 (the counter-based generator Philox4x32-R of Salmon, Moraes, Dror and Shaw,
// "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11; R = 10 is the standard one) and
// philox_uniform, a float in [0, 1) that is a pure function of (seed, offset + index).
// Header-only and callable from CUDA kernels (RC_HOST_DEVICE), so CPU and GPU dropout compute
// the same mask without any shared state: element i of a draw at `offset` uses position
// offset + i, and a later draw simply starts at a larger offset.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define RC_HOST_DEVICE __host__ __device__
#else
#define RC_HOST_DEVICE
#endif

namespace rankclip {

struct PhiloxBlock {
    uint32_t v[4];
};

// Philox4x32-R: a bijection of the 128-bit counter `ctr` keyed by the 64-bit key {key0, key1}.
template <int Rounds>
RC_HOST_DEVICE inline PhiloxBlock philox4x32(PhiloxBlock ctr, uint32_t key0, uint32_t key1) {
    const uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;   // round multipliers
    const uint32_t kBump0 = 0x9E3779B9u, kBump1 = 0xBB67AE85u; // Weyl key increments
    for (int round = 0; round < Rounds; round++) {
        if (round > 0) {
            key0 += kBump0;
            key1 += kBump1;
        }
        const uint64_t p0 = static_cast<uint64_t>(kMul0) * ctr.v[0];
        const uint64_t p1 = static_cast<uint64_t>(kMul1) * ctr.v[2];
        const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        PhiloxBlock next;
        next.v[0] = hi1 ^ ctr.v[1] ^ key0;
        next.v[1] = lo1;
        next.v[2] = hi0 ^ ctr.v[3] ^ key1;
        next.v[3] = lo0;
        ctr = next;
    }
    return ctr;
}

RC_HOST_DEVICE inline PhiloxBlock philox4x32_10(PhiloxBlock ctr, uint32_t key0, uint32_t key1) {
    return philox4x32<10>(ctr, key0, key1);
}

// The four words at stream position 4 * block, key = seed: counter {block lo, block hi, 0, 0}.
RC_HOST_DEVICE inline PhiloxBlock philox_block(uint64_t seed, uint64_t block) {
    PhiloxBlock ctr = {{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
    return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// The top 24 bits of a word as a float in [0, 1) (exact: every value is k / 2^24).
RC_HOST_DEVICE inline float philox_word_to_unit_float(uint32_t word) {
    return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Uniform in [0, 1) for stream position p = offset + index: word p % 4 of block p / 4.
// Depends only on (seed, offset + index); four neighbouring positions share one Philox call,
// so a caller filling a run can use philox_block directly and take all four words.
RC_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t index) {
    const uint64_t p = offset + index;
    const PhiloxBlock b = philox_block(seed, p >> 2);
    return philox_word_to_unit_float(b.v[p & 3]);
}

}  // namespace rankclip
