// tests/test_json.cpp
// tests: engine/json.h — parsing of every value kind, escapes (incl. surrogate pairs), UTF-8
// validation, int64/double distinction, writer round trips (compact and pretty), and the
// byte offsets named by parse errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/error.h"
#include "engine/json.h"

using namespace rankclip;

namespace {

// The message of the Error that parsing `text` throws ("" if it does not throw).
std::string parse_error(const std::string& text) {
    try {
        Json::parse(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Expects a parse error mentioning `what` at byte `offset`.
void expect_parse_error(const std::string& text, const std::string& what, size_t offset) {
    std::string msg = parse_error(text);
    ASSERT_FALSE(msg.empty()) << "no error for: " << text;
    EXPECT_NE(msg.find(what), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("at byte " + std::to_string(offset)), std::string::npos) << "message: " << msg;
}

}  // namespace

TEST(Json, ParsesScalars) {
    EXPECT_TRUE(Json::parse("null").is_null());
    EXPECT_EQ(Json::parse("true").as_bool(), true);
    EXPECT_EQ(Json::parse(" false ").as_bool(), false);
    EXPECT_EQ(Json::parse("\"abc\"").as_string(), "abc");
    EXPECT_EQ(Json::parse("\"\"").as_string(), "");
}

TEST(Json, IntegersAreExactInt64) {
    Json max = Json::parse("9223372036854775807");
    ASSERT_TRUE(max.is_int());
    EXPECT_EQ(max.as_int(), std::numeric_limits<int64_t>::max());
    Json min = Json::parse("-9223372036854775808");
    ASSERT_TRUE(min.is_int());
    EXPECT_EQ(min.as_int(), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(Json::parse("0").as_int(), 0);
    EXPECT_EQ(Json::parse("-0").as_int(), 0);
    // 2^53 + 1 is not representable as a double; it must survive exactly as an int
    EXPECT_EQ(Json::parse("9007199254740993").as_int(), (int64_t(1) << 53) + 1);
    // one past int64 becomes a double
    Json big = Json::parse("9223372036854775808");
    ASSERT_TRUE(big.is_double());
    EXPECT_EQ(big.as_double(), 9223372036854775808.0);
}

TEST(Json, DoublesAndTheirAccessors) {
    EXPECT_TRUE(Json::parse("1.0").is_double());
    EXPECT_TRUE(Json::parse("1e2").is_double());
    EXPECT_EQ(Json::parse("1e2").as_double(), 100.0);
    EXPECT_EQ(Json::parse("-2.5E-3").as_double(), -2.5e-3);
    EXPECT_EQ(Json::parse("0.1").as_double(), 0.1);
    EXPECT_EQ(Json::parse("5e-324").as_double(), std::numeric_limits<double>::denorm_min());
    EXPECT_EQ(Json::parse("7").as_double(), 7.0);  // an int reads as a double too
    EXPECT_THROW(Json::parse("7.5").as_int(), Error);  // but not the other way
    EXPECT_TRUE(std::isnan(Json::parse("NaN").as_double()));
    EXPECT_EQ(Json::parse("Infinity").as_double(), HUGE_VAL);
    EXPECT_EQ(Json::parse("-Infinity").as_double(), -HUGE_VAL);
}

TEST(Json, ArraysAndObjectsKeepOrder) {
    Json j = Json::parse(R"( {"z": [1, 2.5, "x", null, true, []], "a": {"k": {}}, "m": -3} )");
    ASSERT_TRUE(j.is_object());
    ASSERT_EQ(j.size(), 3u);
    const Json::Object& o = j.as_object();
    EXPECT_EQ(o[0].first, "z");  // file order, not sorted
    EXPECT_EQ(o[1].first, "a");
    EXPECT_EQ(o[2].first, "m");
    const Json& z = j["z"];
    ASSERT_EQ(z.size(), 6u);
    EXPECT_EQ(z.at(0).as_int(), 1);
    EXPECT_EQ(z.at(1).as_double(), 2.5);
    EXPECT_EQ(z.at(2).as_string(), "x");
    EXPECT_TRUE(z.at(3).is_null());
    EXPECT_TRUE(z.at(4).as_bool());
    EXPECT_EQ(z.at(5).size(), 0u);
    EXPECT_TRUE(j["a"]["k"].is_object());
    EXPECT_EQ(j["m"].as_int(), -3);
    EXPECT_TRUE(j.contains("a"));
    EXPECT_FALSE(j.contains("b"));
    EXPECT_EQ(j.find("b"), nullptr);
    EXPECT_THROW(j["b"], Error);
    EXPECT_THROW(z.at(6), Error);
}

TEST(Json, TypeMismatchNamesBothTypes) {
    try {
        Json::parse("[1]").as_string();
        FAIL() << "no error";
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("string"), std::string::npos) << msg;
        EXPECT_NE(msg.find("array"), std::string::npos) << msg;
    }
}

TEST(Json, StringEscapes) {
    EXPECT_EQ(Json::parse(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string(), "a\"b\\c/d\be\ff\ng\rh\ti");
    EXPECT_EQ(Json::parse(R"("\u0041\u00e9\u2713")").as_string(), "A\xC3\xA9\xE2\x9C\x93");
    EXPECT_EQ(Json::parse(R"("\u00E9")").as_string(), "\xC3\xA9");  // upper-case hex
    EXPECT_EQ(Json::parse(R"("\u0000")").as_string(), std::string(1, '\0'));
    // U+1D11E (musical G clef) as a surrogate pair -> 4-byte UTF-8
    EXPECT_EQ(Json::parse(R"("\ud834\udd1e")").as_string(), "\xF0\x9D\x84\x9E");
    // raw UTF-8 passes through
    EXPECT_EQ(Json::parse("\"h\xC3\xA9llo \xF0\x9D\x84\x9E\"").as_string(), "h\xC3\xA9llo \xF0\x9D\x84\x9E");
}

TEST(Json, WriterEscapesAndRoundTripsEveryByte) {
    std::string all;
    for (int c = 1; c < 0x80; c++) all += char(c);
    all += "\xC3\xA9\xF0\x9D\x84\x9E";
    all += '\0';
    std::string text = Json(all).dump();
    for (char c : text) EXPECT_GE((unsigned char)c, 0x20u) << "raw control character in " << text;
    EXPECT_EQ(Json::parse(text).as_string(), all);
    EXPECT_EQ(Json("a\"b\n").dump(), R"("a\"b\n")");
    EXPECT_EQ(Json(std::string("\x01")).dump(), R"("\u0001")");
}

TEST(Json, DumpParseRoundTrip) {
    Json j = Json::object();
    j.set("name", "ViT \"tiny\"");
    j.set("width", 128);
    j.set("lr", 5e-4);
    j.set("one", 1.0);  // must stay a double
    j.set("big", int64_t(1) << 60);
    j.set("neg", -0.0);
    j.set("third", 1.0 / 3.0);
    j.set("tiny", 5e-324);
    j.set("huge", 1.7976931348623157e308);
    j.set("nan", std::nan(""));
    j.set("inf", -HUGE_VAL);
    j.set("flags", Json::array({true, false, nullptr}));
    j.set("nested", Json::object({{"a", Json::array()}, {"b", Json::object()}}));
    j.set("width", 256);  // set replaces in place
    ASSERT_EQ(j.size(), 13u);
    EXPECT_EQ(j.as_object()[1].first, "width");
    EXPECT_EQ(j["width"].as_int(), 256);

    for (int indent : {-1, 0, 2, 4}) {
        std::string text = j.dump(indent);
        Json back = Json::parse(text);
        EXPECT_EQ(back, j) << text;
        EXPECT_TRUE(back["one"].is_double()) << text;
        EXPECT_EQ(back["third"].as_double(), 1.0 / 3.0);
        EXPECT_TRUE(std::signbit(back["neg"].as_double()));
        if (indent < 0) {
            EXPECT_EQ(text.find('\n'), std::string::npos) << "compact output must be one line";
        }
        EXPECT_EQ(back.dump(indent), text);  // the writer is deterministic
    }
    EXPECT_EQ(Json::parse("{\"a\": [1, 2], \"b\": {}}").dump(), "{\"a\":[1,2],\"b\":{}}");
    EXPECT_EQ(Json::parse("{\"a\": [1]}").dump(2), "{\n  \"a\": [\n    1\n  ]\n}");
}

TEST(Json, EqualityDistinguishesIntFromDouble) {
    EXPECT_NE(Json(1), Json(1.0));
    EXPECT_EQ(Json(1), Json(int64_t(1)));
    EXPECT_NE(Json::parse("[1,2]"), Json::parse("[2,1]"));
    EXPECT_NE(Json::parse(R"({"a":1,"b":2})"), Json::parse(R"({"b":2,"a":1})"));  // order matters
}

TEST(Json, UnsignedBeyondInt64IsRefused) {
    EXPECT_EQ(Json(uint64_t(INT64_MAX)).as_int(), INT64_MAX);
    EXPECT_THROW(Json(uint64_t(INT64_MAX) + 1), Error);
}

TEST(Json, ErrorsNameTheByteOffset) {
    expect_parse_error("", "expected a value", 0);
    expect_parse_error("   ", "expected a value", 3);
    expect_parse_error("[1, 2", "unterminated array", 0);
    expect_parse_error("{\"a\": 1", "unterminated object", 0);
    expect_parse_error("{\"a\" 1}", "expected ':'", 5);
    expect_parse_error("{\"a\": 1 \"b\": 2}", "expected ',' or '}'", 8);
    expect_parse_error("[1 2]", "expected ',' or ']'", 3);
    expect_parse_error("{a: 1}", "expected a string key", 1);
    expect_parse_error("{\"a\": 1,}", "expected a string key", 8);
    expect_parse_error("[1,]", "expected a value", 3);
    expect_parse_error("tru", "expected a value", 0);
    expect_parse_error("[01]", "leading zeros", 1);
    expect_parse_error("1.", "expected a digit after '.'", 2);
    expect_parse_error("1e", "expected a digit in the exponent", 2);
    expect_parse_error("-", "expected a digit", 1);
    expect_parse_error("1e400", "out of the range", 0);
    expect_parse_error("{} x", "unexpected content", 3);
    expect_parse_error("\"abc", "unterminated string", 0);
    expect_parse_error("[\"a\nb\"]", "control character", 3);
    expect_parse_error("\"\\x\"", "invalid escape", 1);
    expect_parse_error("\"\\u12G4\"", "invalid hex digit", 5);
    expect_parse_error("\"\\u12", "4 hex digits", 3);
    expect_parse_error("\"ab\\ud834\"", "high surrogate", 3);
    expect_parse_error("\"\\ud834\\u0041\"", "low surrogate", 1);
    expect_parse_error("\"\\udd1e\"", "lone low surrogate", 1);
    expect_parse_error("{\"k\": 1, \"k\": 2}", "duplicate key \"k\"", 9);
}

TEST(Json, RejectsInvalidUtf8) {
    expect_parse_error("\"ab\xFF\"", "invalid UTF-8", 3);
    expect_parse_error("\"\xC3\"", "invalid UTF-8", 1);          // truncated sequence
    expect_parse_error("\"\xC0\xAF\"", "invalid UTF-8", 1);      // overlong '/'
    expect_parse_error("\"\xED\xA0\x80\"", "invalid UTF-8", 1);  // encoded surrogate
    expect_parse_error("\"\xF4\x90\x80\x80\"", "invalid UTF-8", 1);  // beyond U+10FFFF
}

TEST(Json, DeepNestingIsAnErrorNotACrash) {
    std::string deep(100000, '[');
    EXPECT_NE(parse_error(deep).find("nesting deeper"), std::string::npos);
    std::string ok = std::string(100, '[') + std::string(100, ']');
    EXPECT_EQ(Json::parse(ok).size(), 1u);
}
