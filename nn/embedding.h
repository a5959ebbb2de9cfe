// nn/embedding.h
// defines: Embedding, a lookup table of num_embeddings rows of width dim, as torch.nn.Embedding
// (weight (num, dim), initialised N(0, 1) by torch's reset_parameters).
#pragma once
#include <cstdint>

#include "engine/random.h"
#include "nn/module.h"

namespace rankclip {

class Embedding : public Module {
public:
    Embedding(int64_t num_embeddings, int64_t dim, Generator& gen);

    // ids: (...) integer (I64 or I32), each in [0, num_embeddings) -> (..., dim)
    Tensor forward(const Tensor& ids) const;

    int64_t num_embeddings() const { return num_embeddings_; }
    int64_t dim() const { return dim_; }

    Tensor weight;  // (num_embeddings, dim)

private:
    int64_t num_embeddings_, dim_;
};

}  // namespace rankclip
