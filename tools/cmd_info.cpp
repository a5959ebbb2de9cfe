// tools/cmd_info.cpp
// defines: cmd_info, the `rankclip info CHECKPOINT` subcommand: a CLIP checkpoint's config (and
// the preset it matches), parameter count, metadata and tensor list, read without loading the
// weights (models/checkpoint.h).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/error.h"
#include "models/checkpoint.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void info_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip info CHECKPOINT\n"
                 "  print a CLIP checkpoint's config (and the preset it matches), parameter count,\n"
                 "  metadata and tensors (name, dtype, shape).\n");
}

int cmd_info(int argc, char** argv) {
    if (argc == 1 && (!std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h"))) {
        info_usage(stdout);
        return 0;
    }
    RC_CHECK(argc == 1 && argv[0][0] != '-', "usage: rankclip info CHECKPOINT");
    const std::string path = argv[0];
    ClipCheckpointInfo ck = read_clip_checkpoint_info(path);
    std::printf("checkpoint: %s (%llu bytes)\n", path.c_str(), (unsigned long long)ck.file_bytes);
    auto meta = [&](const char* key) {
        auto it = ck.metadata.find(key);
        return it == ck.metadata.end() ? std::string("-") : it->second;
    };
    std::printf("format: %s\ndtype: %s\n", meta("format").c_str(), meta("dtype").c_str());
    if (ck.config) {
        std::string preset;
        for (const std::string& name : clip_config_names())
            if (clip_config(name) == *ck.config) preset = " (preset " + name + ")";
        std::printf("config%s:\n", preset.c_str());
        Json config = ck.config->to_json();
        for (const auto& [key, value] : config.as_object())
            std::printf("  %-15s %s\n", key.c_str(), value.dump().c_str());
    } else {
        std::printf("config: none in the file (a state dict saved by PyTorch?)\n");
    }
    int64_t parameter_tensors = 0;
    for (const auto& t : ck.tensors) parameter_tensors += t.extra ? 0 : 1;
    std::printf("parameters: %lld in %lld tensors\n", (long long)ck.num_parameters, (long long)parameter_tensors);
    for (const auto& [key, value] : ck.metadata) {
        if (key == "format" || key == "dtype" || key == "config" || key == "extra_tensors") continue;
        std::string v = value.size() > 100 ? value.substr(0, 97) + "..." : value;
        std::printf("metadata %s: %s\n", key.c_str(), v.c_str());
    }
    size_t width = 0;
    for (const auto& t : ck.tensors) width = std::max(width, t.name.size());
    std::printf("tensors:\n");
    for (const auto& t : ck.tensors)
        std::printf("  %-*s  %-4s  %s%s\n", int(width), t.name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str(),
                    t.extra ? "  (extra)" : "");
    return 0;
}
