// engine/json.h
// defines: Json, a small JSON value (null, bool, int64, double, string, array, object) with a
// strict parser and a writer. It is enough for the safetensors header, config files and
// metrics.jsonl; it is not a general-purpose JSON library. Kept instead of nlohmann-json after a
// libFuzzer run of 5.6 M inputs found nothing (a fuzz target in CI is planned); see the
// dependencies section of docs/ARCHITECTURE.md.
//
// Choices worth knowing:
// - Objects keep their members in insertion (file) order; lookup is a linear scan, which is fine
//   for the sizes we meet. The parser rejects duplicate keys (JSON allows them, but a duplicate
//   tensor name in a safetensors header is an error, and so is a duplicate config key).
// - Numbers without fraction or exponent that fit in int64 parse as Int (exact); all others as
//   Double. as_double() accepts both; as_int() only Int.
// - Like Python's json module, the writer emits NaN / Infinity / -Infinity for non-finite doubles
//   and the parser accepts them, so a NaN loss in metrics.jsonl does not break logging.
// - Strings are UTF-8; the parser validates UTF-8 and decodes \uXXXX escapes, including
//   surrogate pairs. Parse errors name the byte offset.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace rankclip {

class Json {
public:
    enum class Type : uint8_t { Null, Bool, Int, Double, String, Array, Object };
    using Array = std::vector<Json>;
    using Member = std::pair<std::string, Json>;
    using Object = std::vector<Member>;

    Json() = default;  // null
    Json(std::nullptr_t) {}
    Json(bool b) : type_(Type::Bool), bool_(b) {}
    template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Json(T v) : type_(Type::Int), int_(checked_int64(v)) {}
    Json(double d) : type_(Type::Double), double_(d) {}
    Json(float f) : Json(double(f)) {}
    Json(const char* s) : type_(Type::String), string_(s) {}
    Json(std::string s) : type_(Type::String), string_(std::move(s)) {}
    Json(std::string_view s) : type_(Type::String), string_(s) {}

    static Json array(Array items = {});
    static Json object(Object members = {});

    // Parses one JSON value; surrounding whitespace is allowed, anything else after it is an
    // error. Errors read "json: <what> at byte <offset>".
    static Json parse(std::string_view text);

    // Compact when indent < 0 (one line, as metrics.jsonl needs), else pretty with that indent.
    std::string dump(int indent = -1) const;

    Type type() const { return type_; }
    const char* type_name() const;  // "null", "bool", "int", "double", "string", "array", "object"
    bool is_null() const { return type_ == Type::Null; }
    bool is_bool() const { return type_ == Type::Bool; }
    bool is_int() const { return type_ == Type::Int; }
    bool is_double() const { return type_ == Type::Double; }
    bool is_number() const { return is_int() || is_double(); }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access; a type mismatch throws an Error naming both types.
    bool as_bool() const;
    int64_t as_int() const;
    double as_double() const;  // Int or Double
    const std::string& as_string() const;
    const Array& as_array() const;
    Array& as_array();
    const Object& as_object() const;
    Object& as_object();

    // Arrays and objects: element/member count.
    size_t size() const;
    // Arrays: element i (bounds-checked).
    const Json& at(size_t i) const;
    void push_back(Json value);

    // Objects: find returns nullptr when the key is missing; at/operator[] (const) throw, naming
    // the key; set replaces an existing member in place or appends a new one.
    const Json* find(std::string_view key) const;
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const Json& at(std::string_view key) const;
    const Json& operator[](std::string_view key) const { return at(key); }
    Json& set(std::string key, Json value);

    // Deep equality; Int 1 and Double 1.0 are different values.
    bool operator==(const Json& other) const;
    bool operator!=(const Json& other) const { return !(*this == other); }

private:
    template <typename T>
    static int64_t checked_int64(T v) {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
            if (v > T(INT64_MAX)) throw_int_overflow(uint64_t(v));
        }
        return int64_t(v);
    }
    [[noreturn]] static void throw_int_overflow(uint64_t v);
    [[noreturn]] void throw_type(const char* wanted) const;
    void dump_to(std::string& out, int indent, int depth) const;

    Type type_ = Type::Null;
    bool bool_ = false;
    int64_t int_ = 0;
    double double_ = 0.0;
    std::string string_;
    Array array_;
    Object object_;
};

// Appends `s` to `out` as a quoted JSON string (escaping ", \ and control characters).
void json_quote(std::string& out, std::string_view s);

}  // namespace rankclip
