// engine/safetensors.h
// defines: reading and writing safetensors files (https://github.com/huggingface/safetensors),
// the format of our checkpoints and of the reference tensors that tools/ writes from PyTorch.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (possibly padded with
// spaces), then the data buffer:
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}}
// Offsets are relative to the buffer start; tensors are stored contiguous, row-major, little-endian.
// Supported dtypes: F32, F64, BF16, I32, I64.
//
// Two layers: SafetensorsFile gives validated raw entries (name, dtype, shape, bytes) of a file
// mapped into memory; load_safetensors / SafetensorsFile::tensor / save_safetensors convert
// to and from Tensors. Every problem with a file is an Error naming the file (and the tensor).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/dtype.h"
#include "engine/shape.h"
#include "engine/tensor.h"

namespace rankclip {

// One tensor of a file. `data` points into the file's mapping (valid while the
// SafetensorsFile lives) and has no particular alignment: copy it out with memcpy.
struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    const uint8_t* data = nullptr;
    size_t nbytes = 0;
};

// A safetensors file, validated when opened: header parsed, every entry's dtype, shape and byte
// range checked (inside the buffer, the right size, no two ranges sharing a byte). Gaps between
// tensors and bytes after the last one are tolerated. The file is memory-mapped read-only.
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(SafetensorsFile&& other) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::vector<std::string>& names() const { return names_; }  // in header (file) order
    size_t size() const { return entries_.size(); }
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    const SafetensorsEntry& entry(const std::string& name) const;  // error if missing
    // A new contiguous CPU tensor holding a copy of the entry's data, with the file's dtype.
    Tensor tensor(const std::string& name) const;

private:
    void release();

    std::string path_;
    const uint8_t* mapping_ = nullptr;  // the whole file
    size_t file_size_ = 0;
    std::vector<SafetensorsEntry> entries_;  // in header order
    std::vector<std::string> names_;
    std::map<std::string, size_t> index_;  // name -> position in entries_
    std::map<std::string, std::string> metadata_;
};

// DType <-> the safetensors dtype string ("F32", "BF16", ...). The parse returns false for
// dtypes we do not support (F16, U8, BOOL, ...).
const char* safetensors_dtype_name(DType dtype);
bool parse_safetensors_dtype(const std::string& name, DType* dtype);

// Every tensor of a file as contiguous CPU tensors with the file's dtypes. Optionally returns
// the __metadata__ strings.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

// Writes `tensors` in the given order (header and data both; not sorted), metadata first in
// the header. Tensors may be non-contiguous or on any device; each is copied to the CPU one at a
// time. The write is atomic: the bytes go to `path + ".tmp.<pid>"`, which is fsynced and renamed
// over `path`, so a reader sees either the old file or the complete new one. Names must be
// unique and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace rankclip
