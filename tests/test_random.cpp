// tests/test_random.cpp
// tests: Generator (engine/random.h) against PyTorch's CPU generator, bit for bit, using
// tests/ref/rng_reference.txt (written by tools/gen_rng_ref.py; the format is described there);
// state save/restore; argument errors; and philox4x32 (engine/philox.h) against the Random123
// known-answer vectors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/philox.h"
#include "engine/random.h"

using rankclip::Generator;

namespace {

// A path inside the repository: relative to the working directory (tests run from the repo
// root), else under $RANKCLIP_ROOT, else under a parent of the working directory.
std::string repo_path(const std::string& rel) {
    std::vector<std::string> candidates = {rel};
    if (const char* root = std::getenv("RANKCLIP_ROOT")) candidates.push_back(std::string(root) + "/" + rel);
    std::string up;
    for (int i = 0; i < 4; i++) {
        up += "../";
        candidates.push_back(up + rel);
    }
    for (const auto& c : candidates)
        if (std::ifstream(c).good()) return c;
    return rel;
}

// One line of the reference file: "seed S" or "op KIND DTYPE N A B HASH COUNT V...".
struct RefLine {
    int line_no = 0;
    bool is_seed = false;
    uint64_t seed = 0;
    std::string kind, dtype;
    int64_t n = 0;
    std::string a, b;               // exact decimal text of the op's two parameters
    uint64_t hash = 0;
    std::vector<std::string> values;
};

std::vector<RefLine> load_reference(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path + " (run from the repo root or set RANKCLIP_ROOT)");
    std::vector<RefLine> out;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
        line_no++;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        std::string tag;
        ss >> tag;
        RefLine r;
        r.line_no = line_no;
        if (tag == "seed") {
            r.is_seed = true;
            ss >> r.seed;
        } else if (tag == "op") {
            std::string hash_hex;
            size_t count = 0;
            ss >> r.kind >> r.dtype >> r.n >> r.a >> r.b >> hash_hex >> count;
            r.hash = std::stoull(hash_hex, nullptr, 16);
            r.values.resize(count);
            for (auto& v : r.values) ss >> v;
        } else {
            throw std::runtime_error(path + ":" + std::to_string(line_no) + ": unknown record '" + tag + "'");
        }
        if (ss.fail()) throw std::runtime_error(path + ":" + std::to_string(line_no) + ": malformed line");
        out.push_back(r);
    }
    return out;
}

// 64-bit FNV-1a over the little-endian bytes of the elements, as the generator script does.
template <typename T>
uint64_t fnv1a64(const std::vector<T>& v) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const T& x : v) {
        unsigned char bytes[sizeof(T)];
        std::memcpy(bytes, &x, sizeof(T));   // x86-64 and the reference are little-endian
        for (unsigned char c : bytes) {
            h ^= c;
            h *= 0x100000001B3ull;
        }
    }
    return h;
}

// Elements as the file writes them: hex bits for floats, decimal for integers.
std::string format_value(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%08x", b);
    return buf;
}
std::string format_value(double x) {
    uint64_t b;
    std::memcpy(&b, &x, 8);
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(b));
    return buf;
}
std::string format_value(int64_t x) { return std::to_string(x); }

// The elements the file lists: all of them, or the first and last count/2.
template <typename T>
std::vector<std::string> listed_values(const std::vector<T>& v, size_t count) {
    std::vector<std::string> out;
    if (count == v.size()) {
        for (const T& x : v) out.push_back(format_value(x));
    } else {
        size_t half = count / 2;
        for (size_t i = 0; i < half && i < v.size(); i++) out.push_back(format_value(v[i]));
        for (size_t i = v.size() - std::min(half, v.size()); i < v.size(); i++) out.push_back(format_value(v[i]));
    }
    return out;
}

// Runs one op line on `gen`; returns "" when it matches the reference, else what differs.
template <typename T>
std::string compare(const RefLine& r, const std::vector<T>& got) {
    std::vector<std::string> want = r.values;
    std::vector<std::string> have = listed_values(got, want.size());
    for (size_t i = 0; i < want.size(); i++) {
        if (i >= have.size() || have[i] != want[i]) {
            size_t index = (want.size() == got.size() || i < want.size() / 2) ? i : got.size() - want.size() + i;
            return "listed value " + std::to_string(i) + " (element " + std::to_string(index) + ") is " +
                   (i < have.size() ? have[i] : "missing") + ", torch has " + want[i];
        }
    }
    if (fnv1a64(got) != r.hash) return "listed values agree but the hash of all elements differs";
    return "";
}

std::string run_op(Generator& gen, const RefLine& r) {
    const double a = std::strtod(r.a.c_str(), nullptr), b = std::strtod(r.b.c_str(), nullptr);
    if (r.kind == "normal" || r.kind == "uniform") {
        const bool normal = r.kind == "normal";
        if (r.dtype == "f32") {
            std::vector<float> v(r.n);
            normal ? gen.fill_normal(v.data(), r.n, a, b) : gen.fill_uniform(v.data(), r.n, a, b);
            return compare(r, v);
        }
        if (r.dtype == "f64") {
            std::vector<double> v(r.n);
            normal ? gen.fill_normal(v.data(), r.n, a, b) : gen.fill_uniform(v.data(), r.n, a, b);
            return compare(r, v);
        }
    } else if (r.kind == "normal_strided") {
        // torch's scalar path for every element: the same as n draws of one element each
        if (r.dtype == "f32") {
            std::vector<float> v(r.n);
            for (int64_t i = 0; i < r.n; i++) gen.fill_normal(&v[i], 1, a, b);
            return compare(r, v);
        }
        if (r.dtype == "f64") {
            std::vector<double> v(r.n);
            for (int64_t i = 0; i < r.n; i++) gen.fill_normal(&v[i], 1, a, b);
            return compare(r, v);
        }
    } else if (r.kind == "randint" && r.dtype == "i64") {
        std::vector<int64_t> v(r.n);
        gen.fill_randint(v.data(), r.n, std::stoll(r.a), std::stoll(r.b));
        return compare(r, v);
    } else if (r.kind == "randperm" && r.dtype == "i64") {
        std::vector<int64_t> v(r.n);
        gen.randperm(v.data(), r.n);
        return compare(r, v);
    }
    return "unknown op " + r.kind + " " + r.dtype;
}

}  // namespace

// ---- PyTorch parity ----

TEST(Random, MatchesPyTorchReferenceBitForBit) {
    const std::string path = repo_path("tests/ref/rng_reference.txt");
    const std::vector<RefLine> lines = load_reference(path);
    Generator gen(12345);   // one object for the whole file: manual_seed must fully reset it
    int ops = 0, matched = 0, failures_shown = 0;
    bool seeded = false;
    for (const RefLine& r : lines) {
        if (r.is_seed) {
            gen.manual_seed(r.seed);
            seeded = true;
            continue;
        }
        ASSERT_TRUE(seeded) << path << ":" << r.line_no << ": op before any seed line";
        ops++;
        std::string diff = run_op(gen, r);
        if (diff.empty()) {
            matched++;
        } else if (failures_shown++ < 20) {
            ADD_FAILURE() << path << ":" << r.line_no << ": " << r.kind << " " << r.dtype << " n=" << r.n
                          << " (" << r.a << ", " << r.b << ") seed " << gen.seed() << ": " << diff;
        }
    }
    EXPECT_GE(ops, 400) << "reference file looks truncated: " << path;
    EXPECT_EQ(matched, ops);
    std::printf("[          ] %d of %d PyTorch reference draws matched bit for bit\n", matched, ops);
}

// The C++ standard fixes the 10000th output of the default-seeded mt19937 (seed 5489).
TEST(Random, EngineIsStandardMT19937) {
    Generator gen(5489);
    uint32_t x = 0;
    for (int i = 0; i < 10000; i++) x = gen.random();
    EXPECT_EQ(x, 4123659995u);

    // and follows std::mt19937 for any seed, through several twists; only the low 32 bits seed it
    for (uint64_t seed : {0ull, 1ull, 42ull, 0xFFFFFFFFull, 0x1234567800000007ull}) {
        Generator g(seed);
        std::mt19937 ref(static_cast<uint32_t>(seed));
        for (int i = 0; i < 2000; i++) ASSERT_EQ(g.random(), ref()) << "seed " << seed << " draw " << i;
        EXPECT_EQ(g.seed(), seed);
    }
}

TEST(Random, Random64IsTwoWordsHighFirst) {
    Generator a(7), b(7);
    for (int i = 0; i < 100; i++) {
        uint64_t hi = b.random(), lo = b.random();
        ASSERT_EQ(a.random64(), (hi << 32) | lo);
    }
}

TEST(Random, DrawsHaveTheRightRangeAndMoments) {
    Generator gen(3);
    const int64_t n = 200000;
    std::vector<float> u(n), z(n);
    gen.fill_uniform(u.data(), n, -2.0, 3.0);
    gen.fill_normal(z.data(), n, 1.0, 2.0);
    double su = 0, sz = 0, szz = 0;
    for (int64_t i = 0; i < n; i++) {
        ASSERT_GE(u[i], -2.0f);
        ASSERT_LT(u[i], 3.0f);
        ASSERT_TRUE(std::isfinite(z[i]));
        su += u[i];
        sz += z[i];
        szz += (z[i] - 1.0) * (z[i] - 1.0);
    }
    EXPECT_NEAR(su / n, 0.5, 0.02);
    EXPECT_NEAR(sz / n, 1.0, 0.02);
    EXPECT_NEAR(std::sqrt(szz / n), 2.0, 0.02);

    std::vector<int64_t> r(n), p(1000);
    gen.fill_randint(r.data(), n, -3, 4);
    for (int64_t x : r) ASSERT_TRUE(x >= -3 && x < 4);
    gen.randperm(p.data(), 1000);
    std::vector<int> seen(1000, 0);
    for (int64_t x : p) seen.at(x)++;
    for (int c : seen) ASSERT_EQ(c, 1);
}

TEST(Random, BadArgumentsThrow) {
    Generator gen(0);
    std::vector<int64_t> i64(4);
    std::vector<float> f(4);
    EXPECT_THROW(gen.fill_randint(i64.data(), 4, 5, 5), rankclip::Error);
    EXPECT_THROW(gen.fill_randint(i64.data(), 4, 6, 5), rankclip::Error);
    EXPECT_THROW(gen.fill_uniform(f.data(), 4, 1.0, 0.0), rankclip::Error);
    EXPECT_THROW(gen.fill_normal(f.data(), 4, 0.0, -1.0), rankclip::Error);
    EXPECT_THROW(gen.randperm(i64.data(), -1), rankclip::Error);
}

// ---- state save / restore ----

namespace {
// A mixed run of draws, so a restored generator must reproduce engine position and cache.
std::vector<double> mixed_draws(Generator& gen) {
    std::vector<double> out;
    float f[20];
    double d[3];
    int64_t k[5];
    gen.fill_normal(d, 1);      // scalar path: uses or leaves the cached sample
    out.push_back(d[0]);
    gen.fill_normal(f, 20);
    out.insert(out.end(), f, f + 20);
    gen.fill_uniform(d, 3);
    out.insert(out.end(), d, d + 3);
    gen.fill_randint(k, 5, -10, 10);
    out.insert(out.end(), k, k + 5);
    gen.fill_normal(f, 3);
    out.insert(out.end(), f, f + 3);
    out.push_back(static_cast<double>(gen.random64()));
    return out;
}
}  // namespace

TEST(Random, StateRoundTripResumesExactly) {
    for (int warmup : {0, 1, 623, 624, 625, 5000}) {
        Generator gen(99);
        for (int i = 0; i < warmup; i++) gen.random();
        double one;
        gen.fill_normal(&one, 1);   // leaves a cached Box-Muller sample in the state
        const std::vector<uint8_t> state = gen.get_state();
        const std::vector<double> first = mixed_draws(gen);

        Generator other(1);             // a different generator takes the state over entirely
        other.set_state(state);
        EXPECT_EQ(other.seed(), 99u);
        EXPECT_EQ(mixed_draws(other), first) << "warmup " << warmup;
        EXPECT_EQ(other.get_state(), gen.get_state());

        gen.set_state(state);           // and the same one rewinds
        EXPECT_EQ(mixed_draws(gen), first) << "warmup " << warmup;
    }
}

TEST(Random, StateIncludesTheCachedNormalSample) {
    // one scalar normal draws two 64-bit words and caches the second Box-Muller value
    Generator a(5), same_words(5);
    double x;
    a.fill_normal(&x, 1);
    same_words.random64();
    same_words.random64();
    const std::vector<uint8_t> with_cache = a.get_state();
    EXPECT_NE(with_cache, same_words.get_state()) << "the cached sample must be part of the state";

    Generator b(77);
    b.set_state(with_cache);
    double ya, yb;
    a.fill_normal(&ya, 1);   // the cached value: no words drawn
    b.fill_normal(&yb, 1);
    EXPECT_EQ(ya, yb);
    const uint32_t next_a = a.random();
    EXPECT_EQ(next_a, b.random());
    EXPECT_EQ(next_a, same_words.random()) << "the cached draw must not consume words";
}

TEST(Random, MalformedStateThrowsAndLeavesTheGeneratorAlone) {
    Generator gen(11);
    const std::vector<uint8_t> good = gen.get_state();
    auto expect_rejected = [&](std::vector<uint8_t> bad, const char* what) {
        Generator g(11);
        g.random();
        const std::vector<uint8_t> before = g.get_state();
        EXPECT_THROW(g.set_state(bad), rankclip::Error) << what;
        EXPECT_EQ(g.get_state(), before) << what << ": a rejected state must not change the generator";
    };
    expect_rejected({}, "empty");
    expect_rejected(std::vector<uint8_t>(good.begin(), good.end() - 1), "truncated");
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    expect_rejected(longer, "trailing byte");
    std::vector<uint8_t> magic = good;
    magic[0] ^= 0xFF;
    expect_rejected(magic, "bad magic");
    // field offsets from the layout in engine/random.cpp: position at 16, flag at 2516
    ASSERT_EQ(good.size(), 2525u);
    std::vector<uint8_t> position = good;
    position[16] = 0x71;   // 625
    position[17] = 0x02;
    expect_rejected(position, "MT position past the block");
    std::vector<uint8_t> flag = good;
    flag[2516] = 2;
    expect_rejected(flag, "cached-normal flag not 0/1");
    std::vector<uint8_t> zeros = good;
    std::fill(zeros.begin() + 20, zeros.begin() + 2516, 0);
    expect_rejected(zeros, "all-zero MT words");

    // the message says what is wrong
    try {
        Generator g(0);
        g.set_state(std::vector<uint8_t>(10, 0));
        FAIL() << "no exception";
    } catch (const rankclip::Error& e) {
        EXPECT_NE(std::string(e.what()).find("set_state"), std::string::npos) << e.what();
    }
}

// ---- Philox ----

// Random123's tests/kat_vectors, "philox4x32 R ctr[4] key[2] -> out[4]".
TEST(Philox, KnownAnswerVectors) {
    struct Kat {
        int rounds;
        uint32_t ctr[4], key[2], out[4];
    };
    const Kat kats[] = {
        {10, {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {10, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {10, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
        {7, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
        {7, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
    };
    for (const Kat& k : kats) {
        rankclip::PhiloxBlock ctr = {{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
        rankclip::PhiloxBlock got = k.rounds == 10 ? rankclip::philox4x32_10(ctr, k.key[0], k.key[1])
                                                   : rankclip::philox4x32<7>(ctr, k.key[0], k.key[1]);
        for (int i = 0; i < 4; i++) EXPECT_EQ(got.v[i], k.out[i]) << "rounds " << k.rounds << " word " << i;
    }
}

TEST(Philox, UniformIsAFunctionOfSeedAndPosition) {
    const uint64_t seed = 0x0123456789abcdefull;
    // position p = offset + index: word p % 4 of block p / 4, counter {block lo, block hi, 0, 0}
    for (uint64_t p : {0ull, 1ull, 3ull, 4ull, 7ull, 1000001ull, 0x500000003ull}) {
        rankclip::PhiloxBlock ctr = {{static_cast<uint32_t>(p >> 2), static_cast<uint32_t>(p >> 34), 0, 0}};
        rankclip::PhiloxBlock b = rankclip::philox4x32_10(ctr, 0x89abcdefu, 0x01234567u);
        float want = static_cast<float>(b.v[p & 3] >> 8) / 16777216.0f;
        EXPECT_EQ(rankclip::philox_uniform(seed, p, 0), want) << p;
        EXPECT_EQ(rankclip::philox_uniform(seed, 0, p), want) << p;
        if (p >= 2) {
            EXPECT_EQ(rankclip::philox_uniform(seed, p - 2, 2), want) << p;
        }
    }
    // values in [0, 1), mean 1/2, and different seeds give different streams
    double sum = 0;
    int same = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        float u = rankclip::philox_uniform(seed, 17, i);
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
        sum += u;
        same += u == rankclip::philox_uniform(seed + 1, 17, i);
    }
    EXPECT_NEAR(sum / n, 0.5, 0.01);
    EXPECT_LT(same, 10);
}
