// engine/json.cpp
// defines: the Json parser (recursive descent over bytes, strict RFC 8259 plus NaN/Infinity),
// the writer, and the typed accessors. See engine/json.h for the choices made.
#include "engine/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "engine/error.h"
#include "engine/strings.h"

namespace rankclip {

// ---------------------------------------------------------------------------------------------
// construction and access

Json Json::array(Array items) {
    Json j;
    j.type_ = Type::Array;
    j.array_ = std::move(items);
    return j;
}

Json Json::object(Object members) {
    Json j;
    j.type_ = Type::Object;
    for (auto& m : members) j.set(std::move(m.first), std::move(m.second));
    return j;
}

const char* Json::type_name() const {
    switch (type_) {
        case Type::Null: return "null";
        case Type::Bool: return "bool";
        case Type::Int: return "int";
        case Type::Double: return "double";
        case Type::String: return "string";
        case Type::Array: return "array";
        case Type::Object: return "object";
    }
    return "?";
}

void Json::throw_int_overflow(uint64_t v) {
    throw Error(str_cat("json: integer ", v, " does not fit in int64"));
}

void Json::throw_type(const char* wanted) const {
    throw Error(str_cat("json: expected ", wanted, ", got ", type_name()));
}

bool Json::as_bool() const {
    if (!is_bool()) throw_type("bool");
    return bool_;
}

int64_t Json::as_int() const {
    if (!is_int()) throw_type("int");
    return int_;
}

double Json::as_double() const {
    if (is_int()) return double(int_);
    if (!is_double()) throw_type("number");
    return double_;
}

const std::string& Json::as_string() const {
    if (!is_string()) throw_type("string");
    return string_;
}

const Json::Array& Json::as_array() const {
    if (!is_array()) throw_type("array");
    return array_;
}

Json::Array& Json::as_array() {
    if (!is_array()) throw_type("array");
    return array_;
}

const Json::Object& Json::as_object() const {
    if (!is_object()) throw_type("object");
    return object_;
}

Json::Object& Json::as_object() {
    if (!is_object()) throw_type("object");
    return object_;
}

size_t Json::size() const {
    if (is_array()) return array_.size();
    if (is_object()) return object_.size();
    throw_type("array or object");
}

const Json& Json::at(size_t i) const {
    const Array& a = as_array();
    RC_CHECK(i < a.size(), "json: index ", i, " out of range for an array of ", a.size());
    return a[i];
}

void Json::push_back(Json value) { as_array().push_back(std::move(value)); }

const Json* Json::find(std::string_view key) const {
    for (const Member& m : as_object())
        if (m.first == key) return &m.second;
    return nullptr;
}

const Json& Json::at(std::string_view key) const {
    const Json* v = find(key);
    RC_CHECK(v != nullptr, "json: missing key \"", key, "\"");
    return *v;
}

Json& Json::set(std::string key, Json value) {
    Object& o = as_object();
    for (Member& m : o)
        if (m.first == key) return m.second = std::move(value);
    o.emplace_back(std::move(key), std::move(value));
    return o.back().second;
}

bool Json::operator==(const Json& other) const {
    if (type_ != other.type_) return false;
    switch (type_) {
        case Type::Null: return true;
        case Type::Bool: return bool_ == other.bool_;
        case Type::Int: return int_ == other.int_;
        case Type::Double:  // NaN equals NaN here, so round trips of NaN compare equal
            return double_ == other.double_ || (std::isnan(double_) && std::isnan(other.double_));
        case Type::String: return string_ == other.string_;
        case Type::Array: return array_ == other.array_;
        case Type::Object: return object_ == other.object_;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// parser

namespace {

constexpr int kMaxDepth = 256;  // deeper nesting is refused rather than overflowing the stack

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    Json parse_document() {
        skip_whitespace();
        Json v = parse_value(0);
        skip_whitespace();
        if (pos_ != s_.size()) fail("unexpected content after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const { fail_at(what, pos_); }
    [[noreturn]] void fail_at(const std::string& what, size_t pos) const {
        throw Error(str_cat("json: ", what, " at byte ", pos));
    }

    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    void skip_whitespace() {
        while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            pos_++;
    }

    void expect(char c) {
        if (at_end()) fail(str_cat("expected '", c, "' but the text ended"));
        if (s_[pos_] != c) fail(str_cat("expected '", c, "', got ", describe(pos_)));
        pos_++;
    }

    bool consume_word(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    std::string describe(size_t pos) const {
        if (pos >= s_.size()) return "end of text";
        unsigned char c = (unsigned char)s_[pos];
        if (c >= 0x20 && c < 0x7f) return str_cat("'", char(c), "'");
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", c);
        return str_cat("byte ", buf);
    }

    Json parse_value(int depth) {
        if (depth > kMaxDepth) fail(str_cat("nesting deeper than ", kMaxDepth));
        if (at_end()) fail("expected a value but the text ended");
        char c = s_[pos_];
        switch (c) {
            case '{': return parse_object(depth);
            case '[': return parse_array(depth);
            case '"': return Json(parse_string());
            case 't': if (consume_word("true")) return Json(true); break;
            case 'f': if (consume_word("false")) return Json(false); break;
            case 'n': if (consume_word("null")) return Json(); break;
            case 'N': if (consume_word("NaN")) return Json(std::nan("")); break;
            case 'I': if (consume_word("Infinity")) return Json(HUGE_VAL); break;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        }
        fail(str_cat("expected a value, got ", describe(pos_)));
    }

    Json parse_object(int depth) {
        size_t open = pos_;
        expect('{');
        Json obj = Json::object();
        std::set<std::string, std::less<>> seen;
        skip_whitespace();
        if (peek() == '}') {
            pos_++;
            return obj;
        }
        while (true) {
            skip_whitespace();
            if (peek() != '"') fail(str_cat("expected a string key, got ", describe(pos_)));
            size_t key_pos = pos_;
            std::string key = parse_string();
            if (!seen.insert(key).second) fail_at(str_cat("duplicate key \"", key, "\""), key_pos);
            skip_whitespace();
            expect(':');
            skip_whitespace();
            Json value = parse_value(depth + 1);
            obj.as_object().emplace_back(std::move(key), std::move(value));
            skip_whitespace();
            if (at_end()) fail_at("unterminated object", open);
            if (s_[pos_] == ',') { pos_++; continue; }
            if (s_[pos_] == '}') { pos_++; return obj; }
            fail(str_cat("expected ',' or '}' in object, got ", describe(pos_)));
        }
    }

    Json parse_array(int depth) {
        size_t open = pos_;
        expect('[');
        Json arr = Json::array();
        skip_whitespace();
        if (peek() == ']') {
            pos_++;
            return arr;
        }
        while (true) {
            skip_whitespace();
            arr.as_array().push_back(parse_value(depth + 1));
            skip_whitespace();
            if (at_end()) fail_at("unterminated array", open);
            if (s_[pos_] == ',') { pos_++; continue; }
            if (s_[pos_] == ']') { pos_++; return arr; }
            fail(str_cat("expected ',' or ']' in array, got ", describe(pos_)));
        }
    }

    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  or  -Infinity
    Json parse_number() {
        size_t start = pos_;
        if (peek() == '-') {
            pos_++;
            if (consume_word("Infinity")) return Json(-HUGE_VAL);
        }
        auto is_digit = [&] { return !at_end() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
        if (!is_digit()) fail(str_cat("expected a digit, got ", describe(pos_)));
        if (s_[pos_] == '0') {
            pos_++;
            if (is_digit()) fail_at("leading zeros are not allowed in numbers", start);
        } else {
            while (is_digit()) pos_++;
        }
        bool integral = true;
        if (peek() == '.') {
            integral = false;
            pos_++;
            if (!is_digit()) fail(str_cat("expected a digit after '.', got ", describe(pos_)));
            while (is_digit()) pos_++;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            pos_++;
            if (peek() == '+' || peek() == '-') pos_++;
            if (!is_digit()) fail(str_cat("expected a digit in the exponent, got ", describe(pos_)));
            while (is_digit()) pos_++;
        }
        const char* first = s_.data() + start;
        const char* last = s_.data() + pos_;
        if (integral) {
            int64_t v = 0;
            auto r = std::from_chars(first, last, v);
            if (r.ec == std::errc() && r.ptr == last) return Json(v);
            // too large for int64: fall through to double, as Python's float() would give
        }
        double d = 0.0;
        auto r = std::from_chars(first, last, d);
        if (r.ec == std::errc::result_out_of_range) fail_at("number out of the range of a double", start);
        if (r.ec != std::errc() || r.ptr != last) fail_at("malformed number", start);
        return Json(d);
    }

    unsigned parse_hex4() {
        if (pos_ + 4 > s_.size()) fail("\\u escape needs 4 hex digits but the text ended");
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
            char c = s_[pos_ + i];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail_at(str_cat("invalid hex digit ", describe(pos_ + i), " in \\u escape"), pos_ + i);
        }
        pos_ += 4;
        return v;
    }

    // Length of the well-formed UTF-8 sequence starting at pos (RFC 3629), or 0 if malformed.
    size_t utf8_sequence_length(size_t pos) const {
        auto byte = [&](size_t i) -> unsigned { return pos + i < s_.size() ? (unsigned char)s_[pos + i] : 0u; };
        auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
        unsigned b0 = byte(0);
        if (b0 < 0x80) return 1;
        if (in(b0, 0xC2, 0xDF)) return in(byte(1), 0x80, 0xBF) ? 2 : 0;
        if (in(b0, 0xE0, 0xEF)) {
            unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;  // no overlongs, no surrogates
            return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
        }
        if (in(b0, 0xF0, 0xF4)) {
            unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;  // <= U+10FFFF
            return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
        }
        return 0;
    }

    std::string parse_string() {
        size_t open = pos_;
        expect('"');
        std::string out;
        while (true) {
            if (at_end()) fail_at("unterminated string", open);
            unsigned char c = (unsigned char)s_[pos_];
            if (c == '"') {
                pos_++;
                return out;
            }
            if (c < 0x20) fail(str_cat("unescaped control character ", describe(pos_), " in string"));
            if (c == '\\') {
                size_t escape_pos = pos_;
                pos_++;
                if (at_end()) fail_at("unterminated string", open);
                char e = s_[pos_++];
                switch (e) {
                    case '"': out += '"'; break;
                    case '\\': out += '\\'; break;
                    case '/': out += '/'; break;
                    case 'b': out += '\b'; break;
                    case 'f': out += '\f'; break;
                    case 'n': out += '\n'; break;
                    case 'r': out += '\r'; break;
                    case 't': out += '\t'; break;
                    case 'u': {
                        uint32_t cp = parse_hex4();
                        if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: a low one must follow
                            if (!consume_word("\\u")) fail_at("high surrogate not followed by a \\u low surrogate", escape_pos);
                            uint32_t low = parse_hex4();
                            if (low < 0xDC00 || low > 0xDFFF) fail_at("high surrogate not followed by a low surrogate", escape_pos);
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                            fail_at("lone low surrogate in \\u escape", escape_pos);
                        }
                        append_utf8(out, cp);
                        break;
                    }
                    default: fail_at(str_cat("invalid escape \\", describe(escape_pos + 1)), escape_pos);
                }
                continue;
            }
            size_t n = utf8_sequence_length(pos_);
            if (n == 0) fail("invalid UTF-8 in string");
            out.append(s_.data() + pos_, n);
            pos_ += n;
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
};

}  // namespace

Json Json::parse(std::string_view text) { return Parser(text).parse_document(); }

// ---------------------------------------------------------------------------------------------
// writer

void json_quote(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        unsigned char c = (unsigned char)ch;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += ch;  // UTF-8 passes through unchanged
                }
        }
    }
    out += '"';
}

static void append_double(std::string& out, double d) {
    if (std::isnan(d)) { out += "NaN"; return; }
    if (std::isinf(d)) { out += d > 0 ? "Infinity" : "-Infinity"; return; }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest text that reads back exactly
    std::string_view text(buf, size_t(r.ptr - buf));
    out += text;
    // keep it a double when read back: "1" would parse as Int
    if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void Json::dump_to(std::string& out, int indent, int depth) const {
    auto newline = [&](int d) {
        if (indent < 0) return;
        out += '\n';
        out.append(size_t(indent) * size_t(d), ' ');
    };
    switch (type_) {
        case Type::Null: out += "null"; break;
        case Type::Bool: out += bool_ ? "true" : "false"; break;
        case Type::Int: out += std::to_string(int_); break;
        case Type::Double: append_double(out, double_); break;
        case Type::String: json_quote(out, string_); break;
        case Type::Array:
            out += '[';
            for (size_t i = 0; i < array_.size(); i++) {
                if (i) out += ',';
                newline(depth + 1);
                array_[i].dump_to(out, indent, depth + 1);
            }
            if (!array_.empty()) newline(depth);
            out += ']';
            break;
        case Type::Object:
            out += '{';
            for (size_t i = 0; i < object_.size(); i++) {
                if (i) out += ',';
                newline(depth + 1);
                json_quote(out, object_[i].first);
                out += indent < 0 ? ":" : ": ";
                object_[i].second.dump_to(out, indent, depth + 1);
            }
            if (!object_.empty()) newline(depth);
            out += '}';
            break;
    }
}

std::string Json::dump(int indent) const {
    std::string out;
    dump_to(out, indent, 0);
    return out;
}

}  // namespace rankclip
