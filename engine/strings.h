// engine/strings.h
// defines: the small string helpers the library and the tools share — ends_with, split (every
// piece), split_commas (the non-empty pieces of an option's list) and append_utf8 (one code point
// as UTF-8, for the JSON reader's \u escapes and the tokenizer's byte-level symbols).
#pragma once
#include <string>
#include <vector>

namespace rankclip {

// True when s ends with suffix (every s ends with "").
bool ends_with(const std::string& s, const std::string& suffix);

// The pieces of s between the separators, empty ones included: "a::b" -> {"a", "", "b"},
// "" -> {""}.
std::vector<std::string> split(const std::string& s, char sep);

// The non-empty pieces of a comma-separated list: "a,,b," -> {"a", "b"}, "" -> {}.
std::vector<std::string> split_commas(const std::string& s);

// Appends code point cp (< 0x110000) as 1 to 4 bytes of UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace rankclip
