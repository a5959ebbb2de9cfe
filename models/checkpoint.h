// models/checkpoint.h
// defines: save_clip / load_clip, CLIP checkpoints as safetensors files that PyTorch reads too,
// and read_clip_checkpoint_info, what `rankclip info` prints.
//
// A checkpoint holds every parameter under OpenAI CLIP's state_dict name (visual.conv1.weight,
// ..., logit_scale), in F32 or BF16, and string metadata:
//   "format"         "rankclip-clip-v1"
//   "config"         the CLIPConfig as JSON (models/clip_config.h)
//   "dtype"          "F32" or "BF16", the parameters' dtype in the file
//   "extra_tensors"  present only when extra tensors were saved: a JSON list of their names
//   anything the caller adds (a trainer: step, seed, RNG state, ...)
// Extra tensors (optimizer moments, ...) are written after the parameters, as given; their
// names must not be parameter names. A file with extra tensors does not load into PyTorch with
// strict=True as it is: drop the names listed in "extra_tensors" first (tools/check_interop.py
// does).
//
// A state dict saved from PyTorch (OpenAI layout, no metadata) loads too: pass its config.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/shape.h"
#include "engine/tensor.h"
#include "models/clip.h"
#include "models/clip_config.h"

namespace rankclip {

inline constexpr const char* kClipCheckpointFormat = "rankclip-clip-v1";

// Writes `model`'s parameters (cast to `dtype`: F32 or BF16) and its config. `metadata` adds
// keys beside the ones above (which it may not use); `extra_tensors` are written as they are.
// Atomic (save_safetensors): a reader sees the old file or the complete new one.
void save_clip(const std::string& path, const CLIP& model, DType dtype = DType::F32,
               const std::map<std::string, std::string>& metadata = {},
               const std::vector<std::pair<std::string, Tensor>>& extra_tensors = {});

struct ClipCheckpoint {
    CLIPConfig config;
    std::shared_ptr<CLIP> model;                    // F32 parameters on the requested device
    DType file_dtype = DType::F32;                  // BF16 when the file's parameters are, else F32
    std::map<std::string, std::string> metadata;    // every metadata key of the file
    std::map<std::string, Tensor> extra_tensors;    // CPU tensors, with the file's dtypes
};

// Reads a checkpoint into a new CLIP on `device`. The config comes from the file's "config"
// metadata; `config` is for files without one (a PyTorch state dict) and must equal the file's
// when both exist. BF16 parameters are cast to F32; every other dtype must be F32. The names
// must be exactly the model's parameters (plus the listed extra tensors), with the model's
// shapes: otherwise one Error names the file and lists every missing, unexpected and mismatched
// tensor. The model is built and initialised (from seed 0) before its values are overwritten:
// about 2 s of wasted work for b32, nothing for the CPU presets.
ClipCheckpoint load_clip(const std::string& path, Device device = Device::cpu(),
                         const std::optional<CLIPConfig>& config = std::nullopt);

// What a checkpoint holds, read from its header only (no model is built).
struct ClipCheckpointInfo {
    struct TensorInfo {
        std::string name;
        DType dtype;
        Shape shape;
        bool extra = false;  // listed in "extra_tensors"
    };
    std::optional<CLIPConfig> config;             // absent when the file has no "config"
    std::map<std::string, std::string> metadata;
    std::vector<TensorInfo> tensors;               // in file order
    int64_t num_parameters = 0;                    // elements of the non-extra tensors
    uint64_t file_bytes = 0;
};
ClipCheckpointInfo read_clip_checkpoint_info(const std::string& path);

}  // namespace rankclip
