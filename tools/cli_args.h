// tools/cli_args.h
// defines: ArgReader, the option walker of the subcommands (train, eval, bench, synth, ...): each
// option's value is read and checked where it is parsed, and a bad one is an Error naming the
// command, the option and the value; and clip_config_option, the --config NAME|FILE.json value
// of the commands that load checkpoints (eval, embed).
#pragma once
#include <limits>
#include <optional>
#include <string>

#include "engine/error.h"
#include "engine/parse.h"
#include "models/clip_config.h"

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
    // The value as an integer in [lo, hi] / a finite number (engine/parse.h); a bad one is an
    // Error "COMMAND: OPTION needs ..., got 'VALUE'".
    long long integer(long long lo, long long hi = std::numeric_limits<long long>::max()) {
        return parse_int_option(where(), value(), lo, hi);
    }
    // The same for an option stored in an int: at most INT_MAX unless `hi` is smaller (never narrowed
    // silently: --accum 4294967297 is an error, not 1).
    int int_value(int lo, int hi = std::numeric_limits<int>::max()) { return int(integer(lo, hi)); }
    double number() { return parse_real_option(where(), value()); }
    [[noreturn]] void unknown() const {
        throw Error(str_cat(command_, ": unknown option '", option_, "' (see rankclip ", command_, " --help)"));
    }

private:
    const char* command_;
    int argc_;
    char** argv_;
    int i_ = -1;
    std::string option_;

    std::string where() const { return str_cat(command_, ": ", option_); }
};

// --config for checkpoints without a config (PyTorch state dicts): a preset name
// (clip_config_names()), else a JSON config file; nullopt when the option was not given ("").
inline std::optional<CLIPConfig> clip_config_option(const std::string& value) {
    if (value.empty()) return std::nullopt;
    for (const std::string& name : clip_config_names())
        if (name == value) return clip_config(name);
    return CLIPConfig::from_json_file(value);
}

}  // namespace rankclip
