// data/shard_pattern.h
// defines: expand_braces, the brace patterns that name lists of shards ("shards-{00000..00099}.tar",
// as WebDataset and OpenCLIP accept them), and the limits a pattern must stay within.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace rankclip {

// "a-{000..002}.tar" -> a-000.tar a-001.tar a-002.tar (numeric ranges keep the zero padding of
// the first bound); "{a,b}" lists alternatives; several groups multiply; lists may nest; "{a}" is
// just "a". The number of names and their bytes are computed from the pattern before any name is
// built, so a pattern beyond the limits below is refused at once, without using memory for it.
// Throws Error on an unbalanced brace, a bad range, or a pattern beyond the limits.
constexpr size_t kMaxShards = 1000000;                   // names one pattern may expand to
constexpr size_t kMaxPatternBytes = 4096;                // a pattern's length
constexpr int kMaxBraceDepth = 16;                       // braces within braces
constexpr size_t kMaxExpansionBytes = size_t(32) << 20;  // bytes of all the names
// Memory of the lists built on the way (the names, and each group's options expanded before they
// are combined with the rest), each string counted as its bytes plus kStringCost: an upper bound.
constexpr size_t kMaxExpansionWork = size_t(128) << 20;
constexpr size_t kStringCost = 32;

// The size limits, as a parameter so that a fuzzer can run the same code under smaller ones.
struct ShardPatternLimits {
    size_t names = kMaxShards;
    size_t bytes = kMaxExpansionBytes;
    size_t work = kMaxExpansionWork;
};

std::vector<std::string> expand_braces(const std::string& pattern, const ShardPatternLimits& limits = {});

}  // namespace rankclip
