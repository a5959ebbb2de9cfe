// engine/error.h
// defines: Error (the one exception type of the engine) and RC_CHECK, which throws it with a
// message built from its arguments. Messages name the op and the shapes/dtypes/devices involved.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace rankclip {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}

}  // namespace rankclip

#define RC_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond)) throw ::rankclip::Error(::rankclip::str_cat(__VA_ARGS__)); \
    } while (0)
