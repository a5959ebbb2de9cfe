// engine/parse.h
// defines: parse_int_option, parse_real_option, parse_positive_real_option — numbers from
// command-line text, with errors naming the option and the text. The whole text must be the
// number ("12abc" and "" are errors, not 12 or 0). One place for it, so the `rankclip` tool's
// ArgReader (tools/cli_args.h) and the library's option setters (set_eval_option) agree.
#pragma once
#include <cstdint>
#include <limits>
#include <string>

namespace rankclip {

// `text` as an integer in [min, max]; else an Error "OPTION needs an integer >= MIN, got 'TEXT'"
// (or "... an integer in [MIN, MAX]" when max is given). `option` is what the message calls it,
// e.g. "--steps" or "train: --steps".
int64_t parse_int_option(const std::string& option, const std::string& text,
                         int64_t min = std::numeric_limits<int64_t>::min(),
                         int64_t max = std::numeric_limits<int64_t>::max());

// `text` as a finite number; else an Error "OPTION needs a number, got 'TEXT'".
double parse_real_option(const std::string& option, const std::string& text);

// `text` as a finite number > 0; else an Error "OPTION needs a positive number, got 'TEXT'".
double parse_positive_real_option(const std::string& option, const std::string& text);

}  // namespace rankclip
