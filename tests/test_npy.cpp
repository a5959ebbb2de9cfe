// tests/test_npy.cpp
// tests: data/npy.h, the .npy reader and writer:
//   - files written by numpy.save (tests/ref/npy_numpy_*.npy, from tools/gen_interop_ref.py)
//     read with the right dtype, shape and values (recomputed here from the generator's formulas);
//   - write -> read round trips for every supported dtype and for 0-d, 1-d, empty and
//     non-contiguous tensors, and the header numpy expects (64-byte aligned data, '\n' ending);
//   - hand-built headers: version 2.0, spacing and quotes numpy also accepts;
//   - errors (bad magic, big-endian, Fortran order, unsupported dtype, truncated data, a missing
//     file, BF16) name the file and the problem.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/npy.h"
#include "engine/ops.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::TempDir;
using rankclip::test::repo_root;

namespace {

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

// A version 1.0 file with this header dict (padded as numpy does) and these data bytes.
std::string npy_v1(const std::string& dict, const std::string& data) {
    std::string header = dict;
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY";
    out += char(1), out += char(0);
    out += char(header.size() & 0xff), out += char(header.size() >> 8);
    return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace

TEST(Npy, ReadsFilesWrittenByNumpy) {
    const std::string dir = repo_root() + "/tests/ref/";
    ASSERT_TRUE(test::path_exists(dir + "npy_numpy_f32.npy"))
        << "regenerate with /usr/bin/python3 tools/gen_interop_ref.py";

    Tensor f32 = read_npy(dir + "npy_numpy_f32.npy");  // arange(24) * 0.5 - 3, (2, 3, 4)
    EXPECT_EQ(f32.dtype(), DType::F32);
    EXPECT_EQ(f32.shape(), (Shape{2, 3, 4}));
    std::vector<float> fv = f32.to_vector<float>();
    for (int i = 0; i < 24; i++) EXPECT_EQ(fv[i], float(i) * 0.5f - 3.0f) << i;

    Tensor i64 = read_npy(dir + "npy_numpy_i64.npy");  // (arange(15) - 7) * 10**12 + arange(15), (3, 5)
    EXPECT_EQ(i64.dtype(), DType::I64);
    EXPECT_EQ(i64.shape(), (Shape{3, 5}));
    std::vector<int64_t> iv = i64.to_vector<int64_t>();
    for (int64_t i = 0; i < 15; i++) EXPECT_EQ(iv[i], (i - 7) * 1000000000000LL + i) << i;

    Tensor f64 = read_npy(dir + "npy_numpy_f64.npy");  // 1 / (arange(5) + 3), (5,)
    EXPECT_EQ(f64.dtype(), DType::F64);
    EXPECT_EQ(f64.shape(), (Shape{5}));
    std::vector<double> dv = f64.to_vector<double>();
    for (int i = 0; i < 5; i++) EXPECT_EQ(dv[i], 1.0 / (i + 3)) << i;
}

TEST(Npy, RoundTripsEveryDtypeAndShape) {
    TempDir dir;
    Generator gen(3);
    std::vector<Tensor> cases = {
        randn({2, 3, 4}, gen),
        randn({7}, gen, DType::F64),
        randint(-1000, 1000, {4, 5}, gen),                   // I64
        randint(-1000, 1000, {3, 2}, gen).to(DType::I32),
        full({}, 2.5),                                         // 0-d
        zeros({0, 3}),                                         // empty
        randn({1, 1, 1, 1, 1, 2}, gen),
    };
    for (size_t i = 0; i < cases.size(); i++) {
        const std::string path = dir.file("case" + std::to_string(i) + ".npy");
        write_npy(path, cases[i]);
        Tensor back = read_npy(path);
        EXPECT_EQ(back.dtype(), cases[i].dtype()) << i;
        EXPECT_EQ(back.shape(), cases[i].shape()) << i;
        EXPECT_EQ(back.to_vector<double>(), cases[i].to_vector<double>()) << i;

        // numpy's layout: magic, version 1.0, the dict, spaces, '\n', data at a multiple of 64
        std::string bytes = read_bytes(path);
        ASSERT_GE(bytes.size(), 10u);
        EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
        size_t header_len = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
        EXPECT_EQ((10 + header_len) % 64, 0u) << i;
        EXPECT_EQ(bytes[10 + header_len - 1], '\n') << i;
        EXPECT_EQ(bytes.size() - 10 - header_len, size_t(cases[i].numel()) * dtype_size(cases[i].dtype())) << i;
    }
    // the header of a 1-d array spells its shape as a Python 1-tuple
    write_npy(dir.file("one.npy"), zeros({5}));
    EXPECT_NE(read_bytes(dir.file("one.npy")).find("'shape': (5,), }"), std::string::npos);
}

TEST(Npy, WritesTheLogicalOrderOfAView) {
    TempDir dir;
    Tensor x = arange(0, 6, 1, DType::F32).reshape({2, 3});
    Tensor xt = x.t();  // (3, 2), not contiguous
    write_npy(dir.file("t.npy"), xt);
    Tensor back = read_npy(dir.file("t.npy"));
    EXPECT_EQ(back.shape(), (Shape{3, 2}));
    EXPECT_EQ(back.to_vector<float>(), xt.contiguous().to_vector<float>());
    EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Npy, ReadsVersion2AndOtherSpellingsOfTheHeader) {
    TempDir dir;
    std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f};
    // version 2.0: a 4-byte header length
    std::string dict = "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,2)}";
    std::string header = dict;
    while ((12 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string v2 = std::string("\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; i++) v2 += char((header.size() >> (8 * i)) & 0xff);
    write_bytes(dir.file("v2.npy"), v2 + header + raw(values));
    Tensor t = read_npy(dir.file("v2.npy"));
    EXPECT_EQ(t.shape(), (Shape{2, 2}));
    EXPECT_EQ(t.to_vector<float>(), values);

    // keys in another order, spaces everywhere, a 1-tuple shape
    std::vector<int64_t> ids = {5, -6, 7};
    write_bytes(dir.file("spaced.npy"),
                npy_v1("{ 'shape' : ( 3 , ) , 'fortran_order' : False , 'descr' : '<i8' }", raw(ids)));
    Tensor s = read_npy(dir.file("spaced.npy"));
    EXPECT_EQ(s.dtype(), DType::I64);
    EXPECT_EQ(s.to_vector<int64_t>(), ids);

    // Fortran order is harmless for 1-d data
    write_bytes(dir.file("f1.npy"), npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", raw(values)));
    EXPECT_EQ(read_npy(dir.file("f1.npy")).to_vector<float>(), values);
}

TEST(Npy, ErrorsNameTheFileAndTheProblem) {
    TempDir dir;
    std::vector<float> four = {1, 2, 3, 4};
    auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& what) {
        const std::string path = dir.file(name);
        write_bytes(path, bytes);
        std::string msg = error_of([&] { read_npy(path); });
        EXPECT_NE(msg.find(path), std::string::npos) << name << ": " << msg;
        EXPECT_NE(msg.find(what), std::string::npos) << name << ": '" << msg << "' lacks '" << what << "'";
    };
    expect_error("magic.npy", "PK\x03\x04 not an npy file at all", "magic");
    expect_error("short.npy", "\x93NUM", "too short");
    expect_error("big_endian.npy", npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", raw(four)),
                 "'>f4'");
    expect_error("uint8.npy", npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", "abcd"), "'|u1'");
    expect_error("fortran.npy", npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", raw(four)),
                 "Fortran order");
    expect_error("truncated.npy", npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw(four)),
                 "truncated");
    expect_error("no_shape.npy", npy_v1("{'descr': '<f4', 'fortran_order': False}", raw(four)), "'shape'");
    expect_error("version.npy", std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '), "version 9");

    std::string missing = dir.file("does_not_exist.npy");
    std::string msg = error_of([&] { read_npy(missing); });
    EXPECT_NE(msg.find(missing), std::string::npos) << msg;

    msg = error_of([&] { write_npy(dir.file("bf16.npy"), zeros({2}).to(DType::BF16)); });
    EXPECT_NE(msg.find("BF16"), std::string::npos) << msg;
    EXPECT_FALSE(test::path_exists(dir.file("bf16.npy")));
}
