// data/npy.cpp
// defines: read_npy / write_npy and the parser of the .npy header's dict literal. See data/npy.h.
#include "data/npy.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace rankclip {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy: this reader and writer assume a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;  // numpy >= 1.?? aligns the data to 64 bytes; any alignment reads

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw Error(str_cat("npy: ", path, ": ", what));
}

// A cursor over the header's dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// It accepts what numpy.lib.format writes (and reads: single or double quotes, any spacing).
class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

    void skip_space() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    bool accept(char c) {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) { i_++; return true; }
        return false;
    }
    void expect(char c) {
        if (!accept(c)) bad(str_cat("expected '", c, "'"));
    }
    std::string quoted() {
        skip_space();
        if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) bad("expected a quoted string");
        char q = s_[i_++];
        size_t end = s_.find(q, i_);
        if (end == std::string::npos) bad("unterminated string");
        std::string out = s_.substr(i_, end - i_);
        i_ = end + 1;
        return out;
    }
    std::string word() {
        skip_space();
        size_t start = i_;
        while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) i_++;
        return s_.substr(start, i_ - start);
    }
    int64_t integer() {
        skip_space();
        size_t start = i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
        if (start == i_ || i_ - start > 18) bad("expected a dimension (a non-negative integer)");
        int64_t v = std::stoll(s_.substr(start, i_ - start));
        accept('L');  // a Python 2 long, in files written by old numpy
        return v;
    }
    bool at_end() {
        skip_space();
        return i_ == s_.size();
    }
    [[noreturn]] void bad(const std::string& what) const {
        fail(path_, str_cat("bad header (", what, " at character ", i_, "): ", s_));
    }

private:
    const std::string& s_;
    const std::string& path_;
    size_t i_ = 0;
};

struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
};

Header parse_header(const std::string& text, const std::string& path) {
    HeaderParser p(text, path);
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    p.expect('{');
    while (!p.accept('}')) {
        std::string key = p.quoted();
        p.expect(':');
        if (key == "descr") {
            h.descr = p.quoted();
            have_descr = true;
        } else if (key == "fortran_order") {
            std::string w = p.word();
            if (w != "True" && w != "False") p.bad("fortran_order must be True or False");
            h.fortran_order = w == "True";
            have_order = true;
        } else if (key == "shape") {
            p.expect('(');
            while (!p.accept(')')) {
                h.shape.push_back(p.integer());
                if (!p.accept(',')) {
                    p.expect(')');
                    break;
                }
            }
            have_shape = true;
        } else {
            p.bad(str_cat("unknown key '", key, "'"));
        }
        if (!p.accept(',')) {
            p.expect('}');
            break;
        }
    }
    if (!p.at_end()) p.bad("text after the dict");
    if (!have_descr || !have_order || !have_shape)
        p.bad("the dict needs the keys 'descr', 'fortran_order' and 'shape'");
    return h;
}

// '<f4' -> F32 etc. '|' (not applicable) and '=' (native) mean little-endian here.
bool parse_descr(const std::string& descr, DType* dtype) {
    if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '=')) return false;
    std::string kind = descr.substr(1);
    if (kind == "f4") *dtype = DType::F32;
    else if (kind == "f8") *dtype = DType::F64;
    else if (kind == "i4") *dtype = DType::I32;
    else if (kind == "i8") *dtype = DType::I64;
    else return false;
    return true;
}

uint16_t read_u16(const unsigned char* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t read_u32(const unsigned char* p) {
    return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace

const char* npy_descr(DType dtype) {
    switch (dtype) {
        case DType::F32: return "<f4";
        case DType::F64: return "<f8";
        case DType::I32: return "<i4";
        case DType::I64: return "<i8";
        case DType::BF16: break;
    }
    throw Error(str_cat("npy: ", dtype_name(dtype), " has no NumPy dtype (cast to F32 first)"));
}

Tensor read_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, str_cat("cannot open: ", std::strerror(errno)));
    in.seekg(0, std::ios::end);
    const uint64_t file_size = uint64_t(in.tellg());
    in.seekg(0);

    // magic, version, header length
    unsigned char prefix[12] = {};
    if (file_size < 10 || !in.read(reinterpret_cast<char*>(prefix), 10))
        fail(path, str_cat("file is ", file_size, " bytes, too short for a .npy file"));
    if (std::memcmp(prefix, kMagic, kMagicSize) != 0) fail(path, "not a .npy file (no \\x93NUMPY magic)");
    const int major = prefix[6], minor = prefix[7];
    uint64_t header_len = 0, header_start = 0;
    if (major == 1) {
        header_len = read_u16(prefix + 8);
        header_start = 10;
    } else if (major == 2 || major == 3) {
        if (file_size < 12 || !in.read(reinterpret_cast<char*>(prefix + 10), 2))
            fail(path, "file too short for a version 2 header");
        header_len = read_u32(prefix + 8);
        header_start = 12;
    } else {
        fail(path, str_cat("unsupported .npy version ", major, ".", minor));
    }
    if (header_start + header_len > file_size)
        fail(path, str_cat("header of ", header_len, " bytes runs past the end of the file (", file_size, " bytes)"));
    std::string header_text(header_len, '\0');
    in.read(header_text.data(), std::streamsize(header_len));
    Header h = parse_header(header_text, path);

    DType dtype;
    if (!parse_descr(h.descr, &dtype))
        fail(path, str_cat("unsupported dtype '", h.descr,
                           "' (supported: <f4 float32, <f8 float64, <i4 int32, <i8 int64, little-endian)"));
    if (h.fortran_order && h.shape.size() > 1)
        fail(path, "the array is in Fortran order; save it in C order (numpy.ascontiguousarray)");

    uint64_t count = 1;
    for (int64_t d : h.shape)
        if (__builtin_mul_overflow(count, uint64_t(d), &count)) fail(path, "shape too large");
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(count, uint64_t(dtype_size(dtype)), &nbytes)) fail(path, "shape too large");
    const uint64_t data_start = header_start + header_len;
    if (file_size - data_start != nbytes)
        fail(path, str_cat("data is ", file_size - data_start, " bytes, but ", h.descr, " ", shape_str(h.shape),
                           " needs ", nbytes, file_size - data_start < nbytes ? " (truncated file?)" : ""));

    Tensor t = empty(h.shape, dtype);
    if (nbytes > 0 && !in.read(static_cast<char*>(t.raw_data()), std::streamsize(nbytes)))
        fail(path, "read error in the data");
    return t;
}

void write_npy(const std::string& path, const Tensor& t) {
    RC_CHECK(t.defined(), "npy: ", path, ": cannot write an undefined tensor");
    const char* descr = npy_descr(t.dtype());
    Tensor c = t.detach().to(Device::cpu()).contiguous();

    // {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   -- a 1-d shape is "(n,)"
    std::string dict = str_cat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (");
    for (size_t i = 0; i < c.shape().size(); i++) dict += str_cat(i ? ", " : "", c.shape()[i]);
    if (c.shape().size() == 1) dict += ",";
    dict += "), }";
    // pad with spaces and end with '\n' so that the data starts at a multiple of kAlign
    int major = 1;
    size_t prefix = 10;
    auto padded = [&](size_t pre) { return (pre + dict.size() + 1 + kAlign - 1) / kAlign * kAlign - pre; };
    size_t header_len = padded(prefix);
    if (header_len > std::numeric_limits<uint16_t>::max()) {
        major = 2;
        prefix = 12;
        header_len = padded(prefix);
    }
    std::string header = dict + std::string(header_len - dict.size() - 1, ' ') + "\n";

    std::string bytes(kMagic, kMagicSize);
    bytes += char(major);
    bytes += char(0);
    for (size_t i = 0; i < prefix - 8; i++) bytes += char((header_len >> (8 * i)) & 0xff);
    bytes += header;

    const size_t nbytes = size_t(c.numel()) * dtype_size(c.dtype());
    AtomicFile file(path);   // written whole (engine/atomic_file.h)
    file.write(bytes);
    if (nbytes > 0) file.write(c.raw_data(), nbytes);
    file.commit();
}

}  // namespace rankclip
