// tests/test_safetensors.cpp
// tests: engine/safetensors.h — round trips of every dtype (incl. non-contiguous inputs, scalars,
// empty tensors, metadata strings), reading a file written by PyTorch (tools/safetensors_io.py),
// the header layout, atomic writes, and one malformed file per validation rule: each must be an
// Error naming the file (and the tensor), never an out-of-bounds read.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

using namespace rankclip;

namespace {

// A fresh directory under /tmp, removed (with its files) at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rankclip_safetensors_XXXXXX";
        char* p = ::mkdtemp(tmpl);
        if (!p) throw std::runtime_error("mkdtemp failed");
        path = p;
    }
    ~TempDir() { remove_tree(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::vector<std::string> list() const {
        std::vector<std::string> names;
        DIR* d = ::opendir(path.c_str());
        while (dirent* e = d ? ::readdir(d) : nullptr) {
            std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(n);
        }
        if (d) ::closedir(d);
        return names;
    }
    static void remove_tree(const std::string& dir) {
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n == "." || n == "..") continue;
                std::string p = dir + "/" + n;
                struct stat st;
                if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
                else ::unlink(p.c_str());
            }
            ::closedir(d);
        }
        ::rmdir(dir.c_str());
    }
};

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string u64_le(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; i++) s[size_t(i)] = char(uint8_t(v >> (8 * i)));
    return s;
}

// A safetensors file from a header text and a buffer of `buffer_size` zero bytes.
std::string make_file(const std::string& header, size_t buffer_size) {
    return u64_le(header.size()) + header + std::string(buffer_size, '\0');
}

// The message of the Error thrown when opening `path` ("" if it opens).
std::string open_error(const std::string& path) {
    try {
        SafetensorsFile f(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Writes `bytes` as <dir>/<case_name>.safetensors and expects opening it to fail with a message
// naming the file and containing each of `parts` (e.g. the tensor name and the rule broken).
void expect_rejected(const TempDir& dir, const std::string& case_name, const std::string& bytes,
                     std::initializer_list<std::string> parts) {
    std::string path = dir.file(case_name + ".safetensors");
    write_bytes(path, bytes);
    std::string msg = open_error(path);
    ASSERT_FALSE(msg.empty()) << case_name << ": the file was accepted";
    EXPECT_NE(msg.find(path), std::string::npos) << case_name << ": message does not name the file: " << msg;
    for (const std::string& part : parts)
        EXPECT_NE(msg.find(part), std::string::npos) << case_name << ": message lacks '" << part << "': " << msg;
}

// A tensor entry of a header.
std::string entry_json(const std::string& name, const std::string& dtype, const std::string& shape,
                       const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

template <typename T>
Tensor filled(const Shape& shape, DType dtype, T (*value)(int64_t)) {
    Tensor t = empty(shape, dtype);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < t.numel(); i++) p[i] = value(i);
    return t;
}

float f32_value(int64_t i) { return float(i) * 0.25f - 1.0f; }
double f64_value(int64_t i) { return double(i) / 7.0 - 1e300 * double(i % 2); }
uint16_t bf16_value(int64_t i) { return float_to_bf16(float(i) * 0.37f - 3.0f).bits; }
int32_t i32_value(int64_t i) { return i == 0 ? std::numeric_limits<int32_t>::min() : int32_t(i * 1000 - 7); }
int64_t i64_value(int64_t i) { return i == 0 ? std::numeric_limits<int64_t>::max() : -(int64_t(1) << 40) * i; }

// Expects a loaded tensor to equal `expected` byte for byte, with the same dtype and shape.
void expect_same_tensor(const Tensor& got, const Tensor& expected, const std::string& name) {
    ASSERT_TRUE(got.defined()) << name;
    EXPECT_EQ(got.dtype(), expected.dtype()) << name;
    EXPECT_EQ(got.shape(), expected.shape()) << name;
    EXPECT_TRUE(got.device().is_cpu()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    Tensor e = expected.contiguous();
    size_t nbytes = size_t(e.numel()) * dtype_size(e.dtype());
    ASSERT_EQ(size_t(got.numel()) * dtype_size(got.dtype()), nbytes) << name;
    if (nbytes > 0) {
        EXPECT_EQ(std::memcmp(got.raw_data(), e.raw_data(), nbytes), 0) << name << ": bytes differ";
    }
}

std::string ref_path(const std::string& name) { return "tests/ref/" + name; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// round trips

TEST(Safetensors, RoundTripEveryDtypeWithMetadata) {
    TempDir dir;
    std::string path = dir.file("all.safetensors");
    // names not in sorted order: the file keeps the given order
    std::vector<std::pair<std::string, Tensor>> tensors = {
        {"z.f32", filled<float>({2, 3, 4}, DType::F32, f32_value)},
        {"a.f64", filled<double>({5}, DType::F64, f64_value)},
        {"m.bf16", filled<uint16_t>({3, 7}, DType::BF16, bf16_value)},
        {"b.i32", filled<int32_t>({2, 2}, DType::I32, i32_value)},
        {"y.i64", filled<int64_t>({3, 1}, DType::I64, i64_value)},
        {"scalar", filled<float>({}, DType::F32, f32_value)},
        {"empty", empty({0, 3}, DType::F64)},
        {"unicode \xC3\xA9 \"name\"", filled<int32_t>({1}, DType::I32, i32_value)},
    };
    std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {"config", R"({"width": 128, "name": "tiny\n"})"},  // JSON inside a string: escapes both ways
        {"empty", ""},
        {"utf8", "h\xC3\xA9llo \xF0\x9D\x84\x9E\t\x01"},
    };
    save_safetensors(path, tensors, metadata);

    std::map<std::string, std::string> metadata_back;
    std::map<std::string, Tensor> loaded = load_safetensors(path, &metadata_back);
    EXPECT_EQ(metadata_back, metadata);
    ASSERT_EQ(loaded.size(), tensors.size());
    for (const auto& [name, t] : tensors) {
        ASSERT_EQ(loaded.count(name), 1u) << name;
        expect_same_tensor(loaded.at(name), t, name);
    }

    SafetensorsFile file(path);
    std::vector<std::string> names;
    for (const auto& nt : tensors) names.push_back(nt.first);
    EXPECT_EQ(file.names(), names) << "names must come back in the order they were written";
    EXPECT_EQ(file.metadata(), metadata);
    EXPECT_EQ(file.size(), tensors.size());
    EXPECT_TRUE(file.contains("a.f64"));
    EXPECT_FALSE(file.contains("__metadata__"));
    EXPECT_FALSE(file.contains("missing"));
    expect_same_tensor(file.tensor("m.bf16"), tensors[2].second, "m.bf16");
}

TEST(Safetensors, NonContiguousInputsAreWrittenInLogicalOrder) {
    TempDir dir;
    std::string path = dir.file("views.safetensors");
    Tensor base = filled<float>({3, 4}, DType::F32, f32_value);  // value(r, c) = f32_value(r * 4 + c)
    Tensor transposed = base.t();                                 // (4, 3), value(i, j) = base(j, i)
    Tensor column = base.narrow(1, 1, 2);                         // (3, 2), value(r, k) = base(r, 1 + k)
    Tensor row = filled<double>({1, 3}, DType::F64, f64_value);
    Tensor expanded = row.expand({4, 3});                         // stride 0 along dim 0
    ASSERT_FALSE(transposed.is_contiguous());
    ASSERT_FALSE(column.is_contiguous());
    save_safetensors(path, {{"transposed", transposed}, {"column", column}, {"expanded", expanded}});

    auto loaded = load_safetensors(path);
    std::vector<float> t = loaded.at("transposed").to_vector<float>();
    ASSERT_EQ(loaded.at("transposed").shape(), Shape({4, 3}));
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 3; j++) EXPECT_EQ(t[size_t(i * 3 + j)], f32_value(j * 4 + i)) << i << "," << j;
    std::vector<float> c = loaded.at("column").to_vector<float>();
    ASSERT_EQ(loaded.at("column").shape(), Shape({3, 2}));
    for (int64_t r = 0; r < 3; r++)
        for (int64_t k = 0; k < 2; k++) EXPECT_EQ(c[size_t(r * 2 + k)], f32_value(r * 4 + 1 + k));
    std::vector<double> e = loaded.at("expanded").to_vector<double>();
    ASSERT_EQ(loaded.at("expanded").shape(), Shape({4, 3}));
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 3; j++) EXPECT_EQ(e[size_t(i * 3 + j)], f64_value(j));
}

TEST(Safetensors, HeaderLayoutMatchesTheFormat) {
    TempDir dir;
    std::string path = dir.file("layout.safetensors");
    Tensor a = filled<int32_t>({3}, DType::I32, i32_value);
    Tensor b = filled<uint16_t>({5}, DType::BF16, bf16_value);  // 10 bytes: the next tensor starts unaligned
    Tensor c = filled<double>({2}, DType::F64, f64_value);
    save_safetensors(path, {{"a", a}, {"b", b}, {"c", c}}, {{"k", "v"}});

    std::string bytes = read_bytes(path);
    ASSERT_GE(bytes.size(), 8u);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | uint8_t(bytes[size_t(i)]);
    EXPECT_EQ(n % 8, 0u) << "header padded so the data buffer starts 8-aligned";
    ASSERT_EQ(bytes.size(), 8 + n + 12 + 10 + 16);
    Json header = Json::parse(bytes.substr(8, n));  // trailing padding spaces are valid JSON whitespace
    const Json::Object& members = header.as_object();
    ASSERT_EQ(members.size(), 4u);
    EXPECT_EQ(members[0].first, "__metadata__");
    EXPECT_EQ(header["__metadata__"]["k"].as_string(), "v");
    EXPECT_EQ(header["a"]["dtype"].as_string(), "I32");
    EXPECT_EQ(header["b"]["dtype"].as_string(), "BF16");
    EXPECT_EQ(header["c"]["shape"], Json::array({2}));
    EXPECT_EQ(header["a"]["data_offsets"], Json::array({0, 12}));
    EXPECT_EQ(header["b"]["data_offsets"], Json::array({12, 22}));
    EXPECT_EQ(header["c"]["data_offsets"], Json::array({22, 38}));
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + 22, c.raw_data(), 16), 0) << "data stored little-endian, raw";

    // the raw layer points at the same bytes
    SafetensorsFile file(path);
    const SafetensorsEntry& e = file.entry("b");
    EXPECT_EQ(e.name, "b");
    EXPECT_EQ(e.dtype, DType::BF16);
    EXPECT_EQ(e.shape, Shape({5}));
    EXPECT_EQ(e.nbytes, 10u);
    EXPECT_EQ(std::memcmp(e.data, b.raw_data(), 10), 0);
}

TEST(Safetensors, ReadsFileWrittenByPyTorch) {
    // written by tools/gen_safetensors_ref.py; the values below follow the formulas given there
    std::string path = ref_path("safetensors_py.safetensors");
    std::map<std::string, std::string> metadata;
    std::map<std::string, Tensor> t;
    ASSERT_NO_THROW(t = load_safetensors(path, &metadata)) << "run the tests from the repository root";
    EXPECT_EQ(metadata.at("format"), "pt");
    EXPECT_EQ(metadata.at("note"), "h\xC3\xA9llo \"quoted\"\n\ttab \xE2\x9C\x93 \xF0\x9D\x84\x9E");
    EXPECT_EQ(SafetensorsFile(path).names(),
              (std::vector<std::string>{"f32", "f64", "bf16", "i32", "i64", "scalar", "empty", "transposed"}));

    ASSERT_EQ(t.at("f32").shape(), Shape({2, 3}));
    std::vector<float> f32 = t.at("f32").to_vector<float>();
    for (int i = 0; i < 6; i++) EXPECT_EQ(f32[size_t(i)], float(i) * 0.5f - 1.0f);

    ASSERT_EQ(t.at("f64").dtype(), DType::F64);
    std::vector<double> f64 = t.at("f64").to_vector<double>();
    ASSERT_EQ(f64.size(), 4u);
    for (int i = 0; i < 4; i++) EXPECT_EQ(f64[size_t(i)], double(i) / 3.0);

    // PyTorch's float -> bf16 rounding must equal ours, ties to even included
    const float bf16_inputs[] = {1.0f, -2.5f, 3.14159f, 1e-3f, 65504.0f, -0.0f, 1.00390625f, 1.01171875f};
    const Tensor& bf = t.at("bf16");
    ASSERT_EQ(bf.dtype(), DType::BF16);
    ASSERT_EQ(bf.numel(), 8);
    const uint16_t* bits = static_cast<const uint16_t*>(bf.raw_data());
    for (int i = 0; i < 8; i++) EXPECT_EQ(bits[i], float_to_bf16(bf16_inputs[i]).bits) << "bf16 input " << bf16_inputs[i];

    ASSERT_EQ(t.at("i32").dtype(), DType::I32);
    const int32_t* i32 = static_cast<const int32_t*>(t.at("i32").raw_data());
    EXPECT_EQ(i32[0], -7);
    EXPECT_EQ(i32[1], 0);
    EXPECT_EQ(i32[2], std::numeric_limits<int32_t>::max());
    EXPECT_EQ(i32[3], std::numeric_limits<int32_t>::min());

    ASSERT_EQ(t.at("i64").dtype(), DType::I64);
    const int64_t* i64 = static_cast<const int64_t*>(t.at("i64").raw_data());
    EXPECT_EQ(i64[0], -(int64_t(1) << 40));
    EXPECT_EQ(i64[1], 5);
    EXPECT_EQ(i64[2], int64_t(1) << 62);

    EXPECT_EQ(t.at("scalar").shape(), Shape({}));
    EXPECT_EQ(t.at("scalar").item(), 2.5);
    EXPECT_EQ(t.at("empty").shape(), Shape({0, 3}));

    ASSERT_EQ(t.at("transposed").shape(), Shape({4, 3}));
    std::vector<float> tr = t.at("transposed").to_vector<float>();
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) EXPECT_EQ(tr[size_t(i * 3 + j)], float(j * 4 + i));
}

// ---------------------------------------------------------------------------------------------
// atomic writes

TEST(Safetensors, AtomicWriteLeavesNoTempFile) {
    TempDir dir;
    std::string path = dir.file("ckpt.safetensors");
    Tensor first = filled<float>({4}, DType::F32, f32_value);
    save_safetensors(path, {{"w", first}});
    EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});

    // overwriting replaces the file
    Tensor second = filled<double>({2, 2}, DType::F64, f64_value);
    save_safetensors(path, {{"w", second}, {"v", first}});
    EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});
    auto loaded = load_safetensors(path);
    expect_same_tensor(loaded.at("w"), second, "w");
    expect_same_tensor(loaded.at("v"), first, "v");

    // a refused save leaves the previous file intact
    std::string before = read_bytes(path);
    EXPECT_THROW(save_safetensors(path, {{"x", first}, {"x", second}}), Error);
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});
}

TEST(Safetensors, FailedRenameRemovesTheTempFile) {
    TempDir dir;
    std::string path = dir.file("occupied");
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);  // a directory sits where the file should go
    ::mkdir((path + "/child").c_str(), 0755);   // non-empty, so rename cannot replace it
    try {
        save_safetensors(path, {{"w", filled<float>({2}, DType::F32, f32_value)}});
        FAIL() << "saving over a directory succeeded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_EQ(dir.list(), std::vector<std::string>{"occupied"}) << "the temp file was left behind";
}

TEST(Safetensors, SaveRefusesBadNamesAndPaths) {
    TempDir dir;
    Tensor t = filled<float>({2}, DType::F32, f32_value);
    auto save_error = [&](const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors) {
        try {
            save_safetensors(path, tensors);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    std::string path = dir.file("x.safetensors");
    std::string msg = save_error(path, {{"w", t}, {"w", t}});
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
    msg = save_error(path, {{"__metadata__", t}});
    EXPECT_NE(msg.find("reserved"), std::string::npos) << msg;
    msg = save_error(path, {{"undefined", Tensor()}});
    EXPECT_NE(msg.find("'undefined'"), std::string::npos) << msg;
    std::string missing_dir = dir.file("no/such/dir/x.safetensors");
    msg = save_error(missing_dir, {{"w", t}});
    EXPECT_NE(msg.find(missing_dir), std::string::npos) << msg;
    EXPECT_TRUE(dir.list().empty());
}

// ---------------------------------------------------------------------------------------------
// malformed files

TEST(Safetensors, RejectsBadFileFraming) {
    TempDir dir;
    expect_rejected(dir, "empty", "", {"too short"});
    expect_rejected(dir, "five_bytes", "abcde", {"too short"});
    expect_rejected(dir, "header_past_end", u64_le(100) + "{}", {"header size 100", "past the end"});
    expect_rejected(dir, "header_absurd", u64_le(200000000) + "{}", {"header size 200000000", "limit"});
    expect_rejected(dir, "header_huge", u64_le(~uint64_t(0)) + "{}", {"limit"});
    expect_rejected(dir, "not_json", make_file("{\"a\": ", 0), {"not valid JSON", "byte"});
    expect_rejected(dir, "trailing_garbage", make_file("{} x", 0), {"not valid JSON"});
    expect_rejected(dir, "not_object", make_file("[1, 2]", 0), {"array, not an object"});
    expect_rejected(dir, "bad_utf8", make_file("{\"\xFF\": 1}", 0), {"UTF-8"});

    std::string missing = dir.file("does_not_exist.safetensors");
    std::string msg = open_error(missing);
    EXPECT_NE(msg.find(missing), std::string::npos) << msg;
    msg = open_error(dir.path);  // a directory
    EXPECT_NE(msg.find(dir.path), std::string::npos) << msg;
}

TEST(Safetensors, RejectsBadEntries) {
    TempDir dir;
    auto one = [](const std::string& entry) { return make_file("{" + entry + "}", 64); };
    expect_rejected(dir, "entry_not_object", one("\"w\": [1]"), {"'w'", "not an object"});
    expect_rejected(dir, "no_dtype", one("\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}"), {"'w'", "missing \"dtype\""});
    expect_rejected(dir, "no_shape", one("\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), {"'w'", "missing \"shape\""});
    expect_rejected(dir, "no_offsets", one("\"w\":{\"dtype\":\"F32\",\"shape\":[2]}"), {"'w'", "missing \"data_offsets\""});
    expect_rejected(dir, "unknown_dtype", one(entry_json("w", "F16", "[2]", "[0,4]")), {"'w'", "unsupported dtype 'F16'"});
    expect_rejected(dir, "dtype_not_string", one("\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}"),
                    {"'w'", "dtype must be a string"});
    expect_rejected(dir, "negative_dim", one(entry_json("w", "F32", "[-2]", "[0,8]")), {"'w'", "shape must be"});
    expect_rejected(dir, "fractional_dim", one(entry_json("w", "F32", "[2.5]", "[0,8]")), {"'w'", "shape must be"});
    expect_rejected(dir, "shape_not_array", one(entry_json("w", "F32", "2", "[0,8]")), {"'w'", "shape must be"});
    expect_rejected(dir, "one_offset", one(entry_json("w", "F32", "[2]", "[8]")), {"'w'", "data_offsets must be"});
    expect_rejected(dir, "negative_offset", one(entry_json("w", "F32", "[2]", "[-8,0]")), {"'w'", "data_offsets must be"});
    expect_rejected(dir, "end_before_begin", one(entry_json("w", "F32", "[2]", "[8,0]")), {"'w'", "end before begin"});
    expect_rejected(dir, "end_past_buffer", one(entry_json("w", "F32", "[20]", "[0,80]")), {"'w'", "past the data buffer"});
    expect_rejected(dir, "huge_end", one(entry_json("w", "F32", "[2]", "[0,9223372036854775807]")), {"'w'", "past the data"});
    expect_rejected(dir, "size_mismatch", one(entry_json("w", "F32", "[2, 3]", "[0,20]")), {"'w'", "needs 24"});
    // 2^62 * 2^62 * 4 overflows 64 bits; it must not wrap around to a small (matching) size
    expect_rejected(dir, "numel_overflow", one(entry_json("w", "F32", "[4611686018427387904,4611686018427387904]", "[0,0]")),
                    {"'w'", "too large"});
    expect_rejected(dir, "numel_wraps_to_size",
                    one(entry_json("w", "I64", "[2305843009213693952,2]", "[0,0]")), {"'w'", "too large"});
    expect_rejected(dir, "overlap",
                    make_file("{" + entry_json("a", "F32", "[4]", "[0,16]") + "," + entry_json("b", "F32", "[2]", "[12,20]") + "}", 32),
                    {"'b'", "overlap", "'a'"});
    expect_rejected(dir, "overlap_contained",
                    make_file("{" + entry_json("a", "F32", "[1]", "[4,8]") + "," + entry_json("b", "F32", "[4]", "[0,16]") + "}", 32),
                    {"overlap", "'a'", "'b'"});
    expect_rejected(dir, "same_range",
                    make_file("{" + entry_json("a", "I32", "[2]", "[0,8]") + "," + entry_json("b", "F32", "[2]", "[0,8]") + "}", 8),
                    {"overlap"});
    expect_rejected(dir, "duplicate_name",
                    make_file("{" + entry_json("w", "F32", "[1]", "[0,4]") + "," + entry_json("w", "F32", "[1]", "[4,8]") + "}", 8),
                    {"duplicate key \"w\""});
    expect_rejected(dir, "metadata_not_object", make_file("{\"__metadata__\": [1]}", 0), {"__metadata__"});
    expect_rejected(dir, "metadata_value_not_string", make_file("{\"__metadata__\": {\"step\": 5}}", 0),
                    {"__metadata__", "'step'", "not a string"});
}

TEST(Safetensors, AcceptsWhatTheFormatAllows) {
    TempDir dir;
    // header padded with spaces, gaps between tensors, trailing bytes, an empty tensor whose
    // (empty) range sits inside another's, and an entry with an extra key
    std::string header = "{" + entry_json("a", "F32", "[2]", "[0,8]") + "," + entry_json("b", "I64", "[1]", "[16,24]") + "," +
                         entry_json("e", "F32", "[0,5]", "[4,4]") +
                         ",\"x\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[24,26],\"note\":1}}" + std::string(13, ' ');
    std::string path = dir.file("lenient.safetensors");
    std::string bytes = make_file(header, 40);
    bytes[8 + header.size() + 16] = 7;  // b = 7
    write_bytes(path, bytes);
    SafetensorsFile file(path);
    EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "e", "x"}));
    EXPECT_EQ(file.tensor("b").item(), 7.0);
    EXPECT_EQ(file.tensor("e").shape(), Shape({0, 5}));
    EXPECT_EQ(file.entry("x").shape, Shape({}));
    EXPECT_TRUE(file.metadata().empty());
}

TEST(Safetensors, MissingTensorNamesFileAndTensor) {
    TempDir dir;
    std::string path = dir.file("one.safetensors");
    save_safetensors(path, {{"w", filled<float>({1}, DType::F32, f32_value)}});
    SafetensorsFile file(path);
    try {
        file.entry("visual.proj");
        FAIL() << "no error";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << msg;
        EXPECT_NE(msg.find("'visual.proj'"), std::string::npos) << msg;
    }
    EXPECT_THROW(file.tensor("visual.proj"), Error);
}

TEST(Safetensors, FileStaysValidAfterMove) {
    TempDir dir;
    std::string path = dir.file("m.safetensors");
    Tensor w = filled<int64_t>({3}, DType::I64, i64_value);
    save_safetensors(path, {{"w", w}});
    SafetensorsFile a(path);
    SafetensorsFile b(std::move(a));
    expect_same_tensor(b.tensor("w"), w, "w");
    SafetensorsFile c(path);
    c = std::move(b);
    expect_same_tensor(c.tensor("w"), w, "w");
}
