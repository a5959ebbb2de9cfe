// tests/test_parse_option.cpp
// tests: engine/parse.h, the numbers read from command-line text: whole-text integers within
// [min, max], finite (and positive) reals, and errors that name the option, the bound and the
// text for every way the text can be wrong (empty, trailing junk, out of range, too large for
// int64, nan/inf); that ArgReader (tools/cli_args.h) reads through them, its messages
// prefixed with the command; and clip_config_option's --config NAME|FILE.json.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "engine/parse.h"
#include "test_util.h"
#include "tools/cli_args.h"

using namespace rankclip;
using rankclip::test::error_of;
using rankclip::test::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(ParseOption, Integers) {
    EXPECT_EQ(parse_int_option("--n", "12", 1), 12);
    EXPECT_EQ(parse_int_option("--n", "-3"), -3);
    EXPECT_EQ(parse_int_option("--n", "0", 0), 0);
    EXPECT_EQ(parse_int_option("--n", "4", 1, 4), 4);
    EXPECT_EQ(parse_int_option("--n", "9223372036854775807"), std::numeric_limits<int64_t>::max());

    EXPECT_EQ(error_of([] { parse_int_option("--steps", "0", 1); }), "--steps needs an integer >= 1, got '0'");
    EXPECT_EQ(error_of([] { parse_int_option("--scale", "5", 1, 4); }), "--scale needs an integer in [1, 4], got '5'");
    EXPECT_EQ(error_of([] { parse_int_option("--n", "x"); }), "--n needs an integer, got 'x'");
    for (const char* bad : {"", "12abc", "1.5", "abc", "99999999999999999999", "--1"})
        EXPECT_TRUE(contains(error_of([&] { parse_int_option("--batch-size", bad, 1); }),
                             "--batch-size needs an integer >= 1, got '" + std::string(bad) + "'"))
            << bad;
}

TEST(ParseOption, Reals) {
    EXPECT_EQ(parse_real_option("--lr", "1e-3"), 1e-3);
    EXPECT_EQ(parse_real_option("--wd", "0"), 0.0);
    EXPECT_EQ(parse_real_option("--x", "-2.5"), -2.5);
    EXPECT_EQ(parse_positive_real_option("--lr", "0.5"), 0.5);
    for (const char* bad : {"", "fast", "1.0x", "nan", "inf", "-inf", "1e999"})
        EXPECT_EQ(error_of([&] { parse_real_option("--lr", bad); }),
                  "--lr needs a number, got '" + std::string(bad) + "'")
            << bad;
    for (const char* bad : {"0", "-1", "nan", "fast"})
        EXPECT_EQ(error_of([&] { parse_positive_real_option("--probe-lr", bad); }),
                  "--probe-lr needs a positive number, got '" + std::string(bad) + "'")
            << bad;
}

TEST(ParseOption, ArgReaderNamesTheCommand) {
    std::vector<std::string> words = {"--steps", "7", "--lr", "0.25", "--seed", "-1"};
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    ArgReader args("train", int(argv.size()), argv.data());
    std::string a;
    ASSERT_TRUE(args.next(a));
    EXPECT_EQ(a, "--steps");
    EXPECT_EQ(args.integer(1), 7);
    ASSERT_TRUE(args.next(a));
    EXPECT_EQ(args.number(), 0.25);
    ASSERT_TRUE(args.next(a));
    EXPECT_EQ(error_of([&] { args.integer(0); }), "train: --seed needs an integer >= 0, got '-1'");
    EXPECT_FALSE(args.next(a));
    EXPECT_EQ(error_of([&] { args.value(); }), "train: --seed needs a value");
    EXPECT_EQ(error_of([&] { args.unknown(); }), "train: unknown option '--seed' (see rankclip train --help)");
}

TEST(ParseOption, ClipConfigOption) {
    EXPECT_FALSE(clip_config_option("").has_value());
    EXPECT_EQ(clip_config_option("tiny").value(), clip_config("tiny"));
    TempDir dir;
    CLIPConfig small = clip_config("tiny");
    small.text_layers = 1;
    std::ofstream(dir.file("c.json")) << small.to_json().dump();
    EXPECT_EQ(clip_config_option(dir.file("c.json")).value(), small);
    EXPECT_TRUE(contains(error_of([&] { clip_config_option(dir.file("none.json")); }), "none.json"));
}
