// engine/safetensors.cpp
// defines: SafetensorsFile (map + validate a file), load_safetensors, save_safetensors (atomic).
// Validation is done once, when the file is opened, so that no later access can read outside
// the mapping: every byte range is checked against the buffer and against the others.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/json.h"

namespace rankclip {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this reader copies bytes as they are");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;  // the reference implementation's limit

[[noreturn]] void fail_file(const std::string& path, const std::string& what) {
    throw Error(str_cat("safetensors: ", path, ": ", what));
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const std::string& what) {
    throw Error(str_cat("safetensors: ", path, ": tensor '", name, "': ", what));
}

// A JSON value shortened for an error message.
std::string brief(const Json& j) {
    std::string s = j.dump();
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

// Product of the dims times the element size, or false on overflow.
bool checked_nbytes(const Shape& shape, size_t element_size, uint64_t* nbytes) {
    uint64_t n = element_size;
    for (int64_t d : shape)
        if (d == 0) { *nbytes = 0; return true; }  // an empty tensor, whatever the other dims
    for (int64_t d : shape)
        if (__builtin_mul_overflow(n, uint64_t(d), &n)) return false;
    *nbytes = n;
    return true;
}

// Reads the non-negative integers of a JSON array, or returns false.
bool read_non_negative_ints(const Json& j, std::vector<int64_t>* out) {
    if (!j.is_array()) return false;
    out->clear();
    for (const Json& v : j.as_array()) {
        if (!v.is_int() || v.as_int() < 0) return false;
        out->push_back(v.as_int());
    }
    return true;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) { return dtype_name(dtype); }

bool parse_safetensors_dtype(const std::string& name, DType* dtype) {
    for (DType t : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64}) {
        if (name == dtype_name(t)) {
            *dtype = t;
            return true;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// reading

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_file(path, str_cat("cannot open: ", std::strerror(errno)));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail_file(path, "not a regular file");
    }
    file_size_ = size_t(st.st_size);
    if (file_size_ < 8) {
        ::close(fd);
        fail_file(path, str_cat("file is ", file_size_, " bytes, too short to hold the 8-byte header size"));
    }
    void* m = ::mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (m == MAP_FAILED) fail_file(path, str_cat("cannot mmap: ", std::strerror(map_errno)));
    mapping_ = static_cast<const uint8_t*>(m);

    try {
        // --- header size, then header ---
        uint64_t header_size = 0;
        for (int i = 7; i >= 0; i--) header_size = (header_size << 8) | mapping_[i];
        if (header_size > kMaxHeaderBytes)
            fail_file(path, str_cat("header size ", header_size, " is larger than the limit of ", kMaxHeaderBytes,
                                    " bytes (corrupt or not a safetensors file)"));
        if (header_size > file_size_ - 8)
            fail_file(path, str_cat("header size ", header_size, " runs past the end of the file (", file_size_,
                                    " bytes)"));
        std::string_view header_text(reinterpret_cast<const char*>(mapping_ + 8), size_t(header_size));
        Json header;
        try {
            header = Json::parse(header_text);
        } catch (const Error& e) {
            fail_file(path, str_cat("header is not valid JSON: ", e.what(), " (the header starts at file byte 8)"));
        }
        if (!header.is_object()) fail_file(path, str_cat("header is a JSON ", header.type_name(), ", not an object"));

        const uint8_t* buffer = mapping_ + 8 + header_size;
        const uint64_t buffer_size = file_size_ - 8 - header_size;

        // --- entries ---
        struct Range { uint64_t begin, end; size_t entry; };
        std::vector<Range> ranges;
        for (const Json::Member& member : header.as_object()) {
            const std::string& name = member.first;
            const Json& info = member.second;
            if (name == "__metadata__") {
                if (!info.is_object()) fail_file(path, "__metadata__ must be an object of strings");
                for (const Json::Member& kv : info.as_object()) {
                    if (!kv.second.is_string())
                        fail_file(path, str_cat("__metadata__ value of '", kv.first, "' is a ",
                                                kv.second.type_name(), ", not a string"));
                    metadata_[kv.first] = kv.second.as_string();
                }
                continue;
            }
            // (duplicate names cannot reach here: the JSON parser rejects duplicate keys)
            if (!info.is_object()) fail_tensor(path, name, str_cat("entry is a JSON ", info.type_name(), ", not an object"));
            const Json* dtype_json = info.find("dtype");
            const Json* shape_json = info.find("shape");
            const Json* offsets_json = info.find("data_offsets");
            if (!dtype_json) fail_tensor(path, name, "missing \"dtype\"");
            if (!shape_json) fail_tensor(path, name, "missing \"shape\"");
            if (!offsets_json) fail_tensor(path, name, "missing \"data_offsets\"");

            SafetensorsEntry e;
            e.name = name;
            if (!dtype_json->is_string()) fail_tensor(path, name, str_cat("dtype must be a string, got ", brief(*dtype_json)));
            if (!parse_safetensors_dtype(dtype_json->as_string(), &e.dtype))
                fail_tensor(path, name, str_cat("unsupported dtype '", dtype_json->as_string(),
                                                "' (supported: F32, F64, BF16, I32, I64)"));
            if (!read_non_negative_ints(*shape_json, &e.shape))
                fail_tensor(path, name, str_cat("shape must be an array of non-negative integers, got ", brief(*shape_json)));
            std::vector<int64_t> offsets;
            if (!read_non_negative_ints(*offsets_json, &offsets) || offsets.size() != 2)
                fail_tensor(path, name, str_cat("data_offsets must be two non-negative integers [begin, end], got ",
                                                brief(*offsets_json)));
            uint64_t begin = uint64_t(offsets[0]), end = uint64_t(offsets[1]);
            if (end < begin) fail_tensor(path, name, str_cat("data_offsets [", begin, ", ", end, "] end before begin"));
            if (end > buffer_size)
                fail_tensor(path, name, str_cat("data_offsets [", begin, ", ", end, "] run past the data buffer of ",
                                                buffer_size, " bytes"));
            uint64_t expected = 0;
            if (!checked_nbytes(e.shape, dtype_size(e.dtype), &expected) || expected > uint64_t(INT64_MAX))
                fail_tensor(path, name, str_cat("shape ", shape_str(e.shape), " is too large"));
            if (end - begin != expected)
                fail_tensor(path, name, str_cat("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                                                " bytes but ", dtype_name(e.dtype), " ", shape_str(e.shape), " needs ",
                                                expected));
            e.data = buffer + begin;
            e.nbytes = size_t(expected);
            ranges.push_back({begin, end, entries_.size()});
            index_[name] = entries_.size();
            names_.push_back(name);
            entries_.push_back(std::move(e));
        }

        // --- no two tensors may share a byte (empty tensors share none) ---
        std::sort(ranges.begin(), ranges.end(),
                  [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
        const Range* previous = nullptr;  // the non-empty range reaching furthest so far
        for (const Range& r : ranges) {
            if (r.begin == r.end) continue;
            if (previous && r.begin < previous->end)
                fail_tensor(path, entries_[r.entry].name,
                            str_cat("data_offsets [", r.begin, ", ", r.end, "] overlap those of tensor '",
                                    entries_[previous->entry].name, "' [", previous->begin, ", ", previous->end, "]"));
            if (!previous || r.end > previous->end) previous = &r;
        }
    } catch (...) {
        release();
        throw;
    }
}

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() {
    if (mapping_) ::munmap(const_cast<uint8_t*>(mapping_), file_size_);
    mapping_ = nullptr;
    file_size_ = 0;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        mapping_ = other.mapping_;
        file_size_ = other.file_size_;
        entries_ = std::move(other.entries_);
        names_ = std::move(other.names_);
        index_ = std::move(other.index_);
        metadata_ = std::move(other.metadata_);
        other.mapping_ = nullptr;
        other.file_size_ = 0;
    }
    return *this;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) fail_tensor(path_, name, str_cat("not in the file (it holds ", entries_.size(), " tensors)"));
    return entries_[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
    const SafetensorsEntry& e = entry(name);
    Tensor t = empty(e.shape, e.dtype, Device::cpu());
    if (e.nbytes > 0) std::memcpy(t.raw_data(), e.data, e.nbytes);
    return t;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
    SafetensorsFile file(path);
    std::map<std::string, Tensor> tensors;
    for (const std::string& name : file.names()) tensors.emplace(name, file.tensor(name));
    if (metadata) *metadata = file.metadata();
    return tensors;
}

// ---------------------------------------------------------------------------------------------
// writing

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    // --- header: names, dtypes, shapes and offsets are known before any data is copied ---
    Json header = Json::object();
    Json::Object& members = header.as_object();
    if (!metadata.empty()) {
        Json meta = Json::object();
        for (const auto& kv : metadata) meta.as_object().emplace_back(kv.first, Json(kv.second));
        members.emplace_back("__metadata__", std::move(meta));
    }
    std::set<std::string> seen;
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__") fail_tensor(path, name, "this name is reserved for the metadata");
        if (!seen.insert(name).second) fail_tensor(path, name, "given twice");
        if (!t.defined()) fail_tensor(path, name, "undefined tensor");
        uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
        Json shape = Json::array();
        for (int64_t d : t.shape()) shape.push_back(Json(d));
        Json info = Json::object();
        info.as_object().emplace_back("dtype", Json(safetensors_dtype_name(t.dtype())));
        info.as_object().emplace_back("shape", std::move(shape));
        info.as_object().emplace_back("data_offsets", Json::array({Json(offset), Json(offset + nbytes)}));
        members.emplace_back(name, std::move(info));
        offset += nbytes;
    }
    std::string header_text = header.dump();
    header_text.append((8 - header_text.size() % 8) % 8, ' ');  // the data buffer starts 8-aligned
    uint8_t size_bytes[8];
    for (int i = 0; i < 8; i++) size_bytes[i] = uint8_t(uint64_t(header_text.size()) >> (8 * i));

    // --- written whole: a temporary file, fsync'ed and renamed over the target (engine/atomic_file.h) ---
    AtomicFile file(path);
    file.write(size_bytes, 8);
    file.write(header_text);
    for (const auto& [name, t] : tensors) {
        Tensor c = t.detach().to(Device::cpu()).contiguous();  // one tensor on the host at a time
        size_t nbytes = size_t(c.numel()) * dtype_size(c.dtype());
        if (nbytes > 0) file.write(c.raw_data(), nbytes);
    }
    file.commit();
}

}  // namespace rankclip
