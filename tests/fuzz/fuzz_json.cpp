// tests/fuzz/fuzz_json.cpp
// defines: the libFuzzer harness of the JSON parser (engine/json.h): parse, and for a parsed value
// dump it and parse the dump again, which must give the same value.
#include <cstdlib>
#include <string_view>

#include "engine/json.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using rankclip::Json;
    FUZZ_GUARD({
        Json v = Json::parse(std::string_view(reinterpret_cast<const char*>(data), size));
        Json again = Json::parse(v.dump());
        // NaN is not equal to itself; compare the dumps, which spell it the same way
        if (again.dump() != v.dump()) std::abort();
        (void)Json::parse(v.dump(2));
    });
    return 0;
}
