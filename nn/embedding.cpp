// nn/embedding.cpp
// defines: Embedding's construction and forward (the engine's embedding op, whose backward
// scatters into the rows that were looked up).
#include "nn/embedding.h"

#include "engine/ops.h"
#include "nn/init.h"

namespace rankclip {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& gen)
    : num_embeddings_(num_embeddings), dim_(dim) {
    RC_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be positive, got ", num_embeddings, " x ", dim);
    weight = register_parameter("weight", empty({num_embeddings, dim}));
    init::normal_(weight, gen, 0.0, 1.0);
}

Tensor Embedding::forward(const Tensor& ids) const {
    RC_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, "Embedding(", num_embeddings_, ", ", dim_,
             "): ids must be I64 or I32, got ", ids.str());
    return embedding(weight, ids);
}

}  // namespace rankclip
