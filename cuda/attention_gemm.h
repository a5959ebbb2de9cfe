// cuda/attention_gemm.h
// declares: attention on the tensor cores through cuBLAS's batched GEMMs (cuda/attention_gemm.cu),
// the path CudaBackend::attention takes for longer sequences; the flash-style kernels of
// cuda/attention.cu keep short sequences, F64, and what the GEMMs cannot read in place.
#pragma once
#include <initializer_list>

#include "engine/tensor.h"

namespace rankclip {

// Whether the GEMM path takes attention of q (B, H, Tq, D), k (B, H, Tk, D) with these other
// operands (v, out, or in the backward v, gout, gq, gk, gv): F32 or BF16, Tq Tk >= 1024 (T >= 32),
// D a multiple of 8, every operand's rows apart by at least D (no stride-0 repeats), the scores
// under 2^28 values. RANKCLIP_ATTENTION=kernel keeps every case on the flash kernels, =gemm sends
// short sequences to the GEMMs too (to measure and test both paths).
bool attention_gemm_applies(const Tensor& q, const Tensor& k, std::initializer_list<const Tensor*> others);

// The contract of Backend::attention / attention_backward (engine/backend.h), for a case
// attention_gemm_applies accepts.
void attention_gemm_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, bool causal,
                            double scale);
void attention_gemm_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                             const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv, bool causal, double scale);

}  // namespace rankclip
