// tests/test_strings.cpp
// tests: the string helpers of engine/strings.h — ends_with, split (empty pieces kept),
// split_commas (empty pieces dropped) and append_utf8 (1 to 4 bytes per code point).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/strings.h"

using namespace rankclip;
using Pieces = std::vector<std::string>;

TEST(Strings, EndsWith) {
    EXPECT_TRUE(ends_with("model.json", ".json"));
    EXPECT_TRUE(ends_with(".npy", ".npy"));
    EXPECT_TRUE(ends_with("x", ""));
    EXPECT_FALSE(ends_with("npy", ".npy"));
    EXPECT_FALSE(ends_with("a.npy.gz", ".npy"));
}

TEST(Strings, SplitKeepsEmptyPieces) {
    EXPECT_EQ(split("a:b:c", ':'), (Pieces{"a", "b", "c"}));
    EXPECT_EQ(split("a::b:", ':'), (Pieces{"a", "", "b", ""}));
    EXPECT_EQ(split("", ','), (Pieces{""}));
    EXPECT_EQ(split("abc", ','), (Pieces{"abc"}));
}

TEST(Strings, SplitCommasDropsEmptyPieces) {
    EXPECT_EQ(split_commas("clip,rankclip"), (Pieces{"clip", "rankclip"}));
    EXPECT_EQ(split_commas(",a,,b,"), (Pieces{"a", "b"}));
    EXPECT_EQ(split_commas(""), Pieces{});
}

TEST(Strings, AppendUtf8) {
    std::string s;
    for (char32_t cp : {char32_t(0x41), char32_t(0xE9), char32_t(0x20AC), char32_t(0x1D11E)}) append_utf8(s, cp);
    EXPECT_EQ(s, "A\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E");
}
