// models/checkpoint.cpp
// defines: save_clip, load_clip and read_clip_checkpoint_info. See models/checkpoint.h.
#include "models/checkpoint.h"

#include <sys/stat.h>

#include <set>

#include "engine/error.h"
#include "engine/json.h"
#include "engine/random.h"
#include "engine/safetensors.h"

namespace rankclip {

namespace {

// The metadata keys save_clip writes itself.
const char* const kReservedKeys[] = {"format", "config", "dtype", "extra_tensors"};

// The names listed in "extra_tensors", or none.
std::set<std::string> extra_tensor_names(const std::map<std::string, std::string>& metadata, const std::string& path) {
    std::set<std::string> names;
    auto it = metadata.find("extra_tensors");
    if (it == metadata.end()) return names;
    try {
        Json list = Json::parse(it->second);
        RC_CHECK(list.is_array(), "expected a JSON list of names, got ", list.type_name());
        for (const Json& name : list.as_array()) names.insert(name.as_string());
    } catch (const Error& e) {
        throw Error(str_cat("load_clip: ", path, ": metadata \"extra_tensors\": ", e.what()));
    }
    return names;
}

// The config in the file's metadata, if any; a bad one is an Error naming the file.
std::optional<CLIPConfig> config_in_metadata(const std::map<std::string, std::string>& metadata,
                                             const std::string& path) {
    auto format = metadata.find("format");
    RC_CHECK(format == metadata.end() || format->second == kClipCheckpointFormat, "load_clip: ", path,
             ": unknown checkpoint format \"", format->second, "\" (this program reads \"", kClipCheckpointFormat,
             "\")");
    auto it = metadata.find("config");
    if (it == metadata.end()) return std::nullopt;
    try {
        return CLIPConfig::from_json_string(it->second);
    } catch (const Error& e) {
        throw Error(str_cat("load_clip: ", path, ": metadata \"config\": ", e.what()));
    }
}

}  // namespace

void save_clip(const std::string& path, const CLIP& model, DType dtype,
               const std::map<std::string, std::string>& metadata,
               const std::vector<std::pair<std::string, Tensor>>& extra_tensors) {
    RC_CHECK(dtype == DType::F32 || dtype == DType::BF16, "save_clip: ", path,
             ": parameters are saved as F32 or BF16, not ", dtype_name(dtype));
    std::map<std::string, std::string> meta = metadata;
    for (const char* key : kReservedKeys)
        RC_CHECK(!meta.count(key), "save_clip: ", path, ": metadata key \"", key, "\" is written by save_clip itself");
    meta["format"] = kClipCheckpointFormat;
    meta["config"] = model.config().to_json().dump();
    meta["dtype"] = dtype_name(dtype);

    std::vector<std::pair<std::string, Tensor>> tensors;
    std::set<std::string> parameter_names;
    for (auto& [name, p] : model.state_dict()) {
        parameter_names.insert(name);
        tensors.emplace_back(name, p.dtype() == dtype ? p : p.to(dtype));
    }
    if (!extra_tensors.empty()) {
        Json names = Json::array();
        for (auto& [name, t] : extra_tensors) {
            RC_CHECK(!parameter_names.count(name), "save_clip: ", path, ": extra tensor '", name,
                     "' has the name of a model parameter");
            names.push_back(name);
            tensors.emplace_back(name, t.detach());
        }
        meta["extra_tensors"] = names.dump();
    }
    save_safetensors(path, tensors, meta);
}

ClipCheckpoint load_clip(const std::string& path, Device device, const std::optional<CLIPConfig>& config) {
    SafetensorsFile file(path);  // validates the whole header; errors name the file and tensor
    ClipCheckpoint ck;
    ck.metadata = file.metadata();

    std::optional<CLIPConfig> stored = config_in_metadata(ck.metadata, path);
    if (stored && config) {
        RC_CHECK(*stored == *config, "load_clip: ", path, ": the config given, ", config->to_json().dump(),
                 ", differs from the file's, ", stored->to_json().dump());
    }
    RC_CHECK(stored || config, "load_clip: ", path,
             ": the file has no \"config\" in its metadata (a state dict saved by PyTorch?); give the config "
             "explicitly");
    ck.config = stored ? *stored : *config;

    // Parameters: BF16 ones are cast to F32; other dtypes are left for load_state_dict to report.
    std::set<std::string> extras = extra_tensor_names(ck.metadata, path);
    std::map<std::string, Tensor> tensors;
    for (const std::string& name : file.names()) {
        Tensor t = file.tensor(name);
        if (extras.count(name)) {
            ck.extra_tensors[name] = t;
            continue;
        }
        if (t.dtype() == DType::BF16) {
            ck.file_dtype = DType::BF16;
            t = t.to(DType::F32);
        }
        tensors[name] = t;
    }
    for (const std::string& name : extras)
        RC_CHECK(ck.extra_tensors.count(name), "load_clip: ", path, ": extra tensor '", name,
                 "' is listed in the metadata but not in the file");

    Generator gen(0);  // the initial values are overwritten below
    ck.model = std::make_shared<CLIP>(ck.config, gen);
    // A file that shares no name with the model is not a CLIP checkpoint at all: say so in one
    // short line instead of listing every name twice.
    size_t known = 0;
    for (auto& [name, p] : ck.model->named_parameters()) known += tensors.count(name);
    RC_CHECK(known > 0 || tensors.empty(), "load_clip: ", path, ": none of its ", tensors.size(),
             " tensors is a CLIP parameter (the first is '", tensors.begin()->first,
             "'): not a CLIP checkpoint in OpenAI's layout");
    try {
        ck.model->load_state_dict(tensors, /*strict=*/true);
    } catch (const Error& e) {
        throw Error(str_cat("load_clip: ", path, ": ", e.what()));
    }
    ck.model->to(device);
    return ck;
}

ClipCheckpointInfo read_clip_checkpoint_info(const std::string& path) {
    SafetensorsFile file(path);
    ClipCheckpointInfo info;
    info.metadata = file.metadata();
    info.config = config_in_metadata(info.metadata, path);
    std::set<std::string> extras = extra_tensor_names(info.metadata, path);
    for (const std::string& name : file.names()) {
        const SafetensorsEntry& e = file.entry(name);
        bool extra = extras.count(name) != 0;
        info.tensors.push_back({name, e.dtype, e.shape, extra});
        if (!extra) info.num_parameters += numel(e.shape);
    }
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) info.file_bytes = uint64_t(st.st_size);
    return info;
}

}  // namespace rankclip
