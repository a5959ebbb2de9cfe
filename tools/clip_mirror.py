"""tools/clip_mirror.py
A plain torch.nn re-implementation of OpenAI CLIP's ViT model (clip/model.py: VisionTransformer,
the causal text Transformer, CLIP) that the C++ models in models/ are tested against. Same module
tree, so the same state_dict names (visual.conv1.weight, ..., token_embedding.weight,
transformer.resblocks.{i}..., ln_final.*, text_projection, logit_scale), and the same
initialisation, drawn from torch's global generator in the same order:

  construction, in module order: the vision tower with torch's module defaults (Conv2d and
  Linear: kaiming_uniform(a=sqrt(5)) weights and uniform biases; nn.MultiheadAttention: its
  out_proj Linear draws at construction, then _reset_parameters draws xavier_uniform for
  in_proj_weight and zeroes both biases; class/positional embedding and proj = W^-0.5 * randn),
  then the text tower (its blocks likewise, nn.Embedding N(0, 1));
  then OpenAI's initialize_parameters, which re-draws only text-tower tensors: token embedding
  N(0, 0.02), positional N(0, 0.01), per block in_proj N(0, W^-0.5), out_proj and c_proj
  N(0, W^-0.5 (2L)^-0.5), c_fc N(0, (2W)^-0.5), text_projection N(0, W^-0.5). OpenAI does not
  re-initialise the vision blocks (only a ModifiedResNet's attnpool and bn3, which a ViT lacks).

Differences from OpenAI's file, none of which touches parameters or the draw order: the head
counts come from the config (OpenAI derives vision heads as width // 64), the MLP activation is
exact GELU unless config["quick_gelu"] (OpenAI always uses QuickGELU), there is no fp16 cast.
The config is a dict with the fields of models/clip_config.h.

Use: from clip_mirror import CLIP, config; torch.manual_seed(0); model = CLIP(config("tiny")).
"""
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

CONFIG_FIELDS = [
    "image_size", "patch_size", "vision_width", "vision_layers", "vision_heads",
    "context_length", "vocab_size", "text_width", "text_layers", "text_heads", "embed_dim",
]

PRESETS = {
    "tiny": dict(image_size=32, patch_size=4, vision_width=128, vision_layers=4, vision_heads=4,
                 context_length=32, vocab_size=49408, text_width=128, text_layers=4, text_heads=4,
                 embed_dim=128, quick_gelu=False),
    "small": dict(image_size=64, patch_size=8, vision_width=256, vision_layers=6, vision_heads=4,
                  context_length=32, vocab_size=49408, text_width=256, text_layers=6, text_heads=4,
                  embed_dim=256, quick_gelu=False),
    "b32": dict(image_size=224, patch_size=32, vision_width=768, vision_layers=12, vision_heads=12,
                context_length=77, vocab_size=49408, text_width=512, text_layers=12, text_heads=8,
                embed_dim=512, quick_gelu=True),
    "b16": dict(image_size=224, patch_size=16, vision_width=768, vision_layers=12, vision_heads=12,
                context_length=77, vocab_size=49408, text_width=512, text_layers=12, text_heads=8,
                embed_dim=512, quick_gelu=True),
}


def config(name, **overrides):
    """A copy of preset `name` with fields replaced by `overrides`."""
    c = dict(PRESETS[name])
    for k, v in overrides.items():
        assert k in c, f"unknown config field {k}"
        c[k] = v
    return c


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block; x is (T, B, W) as in OpenAI's code."""

    def __init__(self, width, heads, quick_gelu, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU() if quick_gelu else nn.GELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width)
        self.attn_mask = attn_mask

    def attention(self, x):
        mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, quick_gelu, attn_mask=None):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, quick_gelu, attn_mask)
                                         for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, output_dim, quick_gelu):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, quick_gelu)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)                          # (B, W, G, G)
        x = x.reshape(x.shape[0], x.shape[1], -1)  # (B, W, G*G)
        x = x.permute(0, 2, 1)                     # (B, G*G, W)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1)             # (B, G*G + 1, W)
        x = x + self.positional_embedding
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)                     # (T, B, W)
        x = self.transformer(x)
        x = x.permute(1, 0, 2)                     # (B, T, W)
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.context_length = cfg["context_length"]
        self.visual = VisionTransformer(cfg["image_size"], cfg["patch_size"], cfg["vision_width"],
                                        cfg["vision_layers"], cfg["vision_heads"], cfg["embed_dim"],
                                        cfg["quick_gelu"])
        self.transformer = Transformer(cfg["text_width"], cfg["text_layers"], cfg["text_heads"], cfg["quick_gelu"],
                                       attn_mask=self.build_attention_mask())
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["text_width"])
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length, cfg["text_width"]))
        self.ln_final = nn.LayerNorm(cfg["text_width"])
        self.text_projection = nn.Parameter(torch.empty(cfg["text_width"], cfg["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = (self.transformer.width ** -0.5) * ((2 * self.transformer.layers) ** -0.5)
        attn_std = self.transformer.width ** -0.5
        fc_std = (2 * self.transformer.width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def build_attention_mask(self):
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # -inf above the diagonal: position i sees j <= i
        return mask

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text)                 # (B, L, W)
        x = x + self.positional_embedding
        x = x.permute(1, 0, 2)                         # (L, B, W)
        x = self.transformer(x)
        x = x.permute(1, 0, 2)                         # (B, L, W)
        x = self.ln_final(x)
        # pooled at the end-of-text token, the largest id of each row
        return x[torch.arange(x.shape[0], device=x.device), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        logit_scale = self.logit_scale.exp()
        logits_per_image = logit_scale * image_features @ text_features.t()
        return image_features, text_features, logits_per_image, logits_per_image.t()


def clip_loss(logits_per_image):
    """The symmetric InfoNCE loss: mean of the cross-entropies over rows and over columns."""
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    ce = nn.functional.cross_entropy
    return (ce(logits_per_image, labels) + ce(logits_per_image.t(), labels)) / 2


if __name__ == "__main__":
    import sys
    for name in sys.argv[1:] or ["tiny", "small", "b32", "b16"]:
        torch.manual_seed(0)
        model = CLIP(config(name))
        print(name, sum(p.numel() for p in model.parameters()), "parameters")
