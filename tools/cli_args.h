// tools/cli_args.h
// defines: ArgReader, the option walker of the subcommands with many flags (train, bench): each
// option's value is read and checked where it is parsed, and a bad one is an Error naming the
// command, the option and the value.
#pragma once
#include <string>

#include "engine/error.h"

namespace rankclip {

class ArgReader {
public:
    ArgReader(const char* command, int argc, char** argv) : command_(command), argc_(argc), argv_(argv) {}

    // The next option name, or false at the end.
    bool next(std::string& option) {
        if (++i_ >= argc_) return false;
        option_ = option = argv_[i_];
        return true;
    }
    std::string value() {
        RC_CHECK(i_ + 1 < argc_, command_, ": ", option_, " needs a value");
        return argv_[++i_];
    }
    long long integer(long long lo) {
        std::string v = value();
        size_t used = 0;
        long long x = 0;
        try {
            x = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        RC_CHECK(used == v.size() && x >= lo, command_, ": ", option_, " needs an integer >= ", lo, ", got '", v, "'");
        return x;
    }
    double number() {
        std::string v = value();
        size_t used = 0;
        double x = 0;
        try {
            x = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        RC_CHECK(used == v.size(), command_, ": ", option_, " needs a number, got '", v, "'");
        return x;
    }
    [[noreturn]] void unknown() const {
        throw Error(str_cat(command_, ": unknown option '", option_, "' (see rankclip ", command_, " --help)"));
    }

private:
    const char* command_;
    int argc_;
    char** argv_;
    int i_ = -1;
    std::string option_;
};

}  // namespace rankclip
