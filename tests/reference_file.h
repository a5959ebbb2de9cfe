// tests/reference_file.h
// defines: ReferenceFile (the tensors and __metadata__ of a committed PyTorch reference file,
// tests/ref/*.safetensors) and load_reference, which reads one once per path. The files are
// committed, so a missing one is an Error — a test failure, never a skip — that names the
// generator script to rerun. What a suite reads from the metadata stays in that suite.
#pragma once
#include <map>
#include <mutex>
#include <string>

#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "test_util.h"

namespace rankclip::test {

struct ReferenceFile {
    std::string path;  // as opened: repo_root() + "/" + the relative path
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> metadata;  // __metadata__: every value a string (JSON text)

    const Tensor& get(const std::string& name) const {
        auto it = tensors.find(name);
        RC_CHECK(it != tensors.end(), path, ": missing tensor '", name, "'");
        return it->second;
    }
    bool has(const std::string& name) const { return tensors.count(name) != 0; }
    // The metadata value under `key`, parsed as JSON (the generators write numbers, lists and
    // objects as JSON text). A new value each call: hold it in a variable before iterating it.
    Json meta(const std::string& key) const {
        auto it = metadata.find(key);
        RC_CHECK(it != metadata.end(), path, ": no '", key, "' in __metadata__");
        return Json::parse(it->second);
    }
};

// `relative_path` (under the repo root, e.g. "tests/ref/ops_reference.safetensors"), loaded on
// the first call and kept for the rest of the run; `generator_script` (e.g. "tools/gen_op_refs.py")
// is named in the error when the file is missing.
inline const ReferenceFile& load_reference(const std::string& relative_path, const std::string& generator_script) {
    static std::mutex mutex;
    static std::map<std::string, ReferenceFile> loaded;  // by relative path; nodes never move
    std::lock_guard<std::mutex> lock(mutex);
    auto it = loaded.find(relative_path);
    if (it != loaded.end()) return it->second;
    ReferenceFile r;
    r.path = repo_root() + "/" + relative_path;
    RC_CHECK(path_exists(r.path), r.path, " is missing: it is committed; regenerate it with /usr/bin/python3 ",
             generator_script, " (or set RANKCLIP_ROOT to the repo root)");
    r.tensors = load_safetensors(r.path, &r.metadata);
    return loaded.emplace(relative_path, std::move(r)).first->second;
}

}  // namespace rankclip::test
