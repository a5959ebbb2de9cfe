// engine/dtype.h
// defines: DType (F32, F64, BF16, I32, I64), its size and name, and the bf16 <-> f32 conversion.
// BF16 is stored as the top 16 bits of an IEEE float; conversion rounds to nearest even,
// as PyTorch does, so bf16 tensors written here match PyTorch's bit for bit.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace rankclip {

enum class DType : uint8_t { F32, F64, BF16, I32, I64 };

inline size_t dtype_size(DType t) {
    switch (t) {
        case DType::F32: return 4;
        case DType::F64: return 8;
        case DType::BF16: return 2;
        case DType::I32: return 4;
        case DType::I64: return 8;
    }
    return 0;
}

inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::F32: return "F32";
        case DType::F64: return "F64";
        case DType::BF16: return "BF16";
        case DType::I32: return "I32";
        case DType::I64: return "I64";
    }
    return "?";
}

inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::BF16; }

struct bf16 {
    uint16_t bits;
};

inline float bf16_to_float(bf16 h) {
    uint32_t u = uint32_t(h.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline bf16 float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // NaN stays NaN
    uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);                          // round to nearest even
    return bf16{uint16_t((u + rounding_bias) >> 16)};
}

}  // namespace rankclip
