// engine/parse.cpp
// defines: the number parsing of engine/parse.h (std::stoll / std::stod, all of the text used).
#include "engine/parse.h"

#include <cmath>
#include <limits>

#include "engine/error.h"

namespace rankclip {

namespace {

// `text` as a finite double, all of it used; false when it is not one.
bool parse_finite(const std::string& text, double* out) {
    size_t used = 0;
    try {
        *out = std::stod(text, &used);
    } catch (const std::exception&) {   // not a number, or out of double's range
        return false;
    }
    return used == text.size() && std::isfinite(*out);
}

}  // namespace

int64_t parse_int_option(const std::string& option, const std::string& text, int64_t min, int64_t max) {
    size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(text, &used);
    } catch (const std::exception&) {   // not a number, or out of long long's range
        used = 0;
    }
    if (used > 0 && used == text.size() && v >= min && v <= max) return v;
    if (max != std::numeric_limits<int64_t>::max())
        throw Error(str_cat(option, " needs an integer in [", min, ", ", max, "], got '", text, "'"));
    if (min != std::numeric_limits<int64_t>::min())
        throw Error(str_cat(option, " needs an integer >= ", min, ", got '", text, "'"));
    throw Error(str_cat(option, " needs an integer, got '", text, "'"));
}

double parse_real_option(const std::string& option, const std::string& text) {
    double v = 0;
    RC_CHECK(parse_finite(text, &v), option, " needs a number, got '", text, "'");
    return v;
}

double parse_positive_real_option(const std::string& option, const std::string& text) {
    double v = 0;
    RC_CHECK(parse_finite(text, &v) && v > 0, option, " needs a positive number, got '", text, "'");
    return v;
}

}  // namespace rankclip
