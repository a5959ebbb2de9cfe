// nn/nn.h
// defines: nothing; includes every layer of nn/ for code that uses several of them.
//   Module (module.h)  init:: initialisers (init.h)  Linear  LayerNorm  Embedding
//   MultiheadAttention  MLP (+ Activation)  ResidualAttentionBlock  Transformer
#pragma once
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"
#include "nn/residual_attention_block.h"
#include "nn/transformer.h"
