// engine/device.cpp
// defines: parse_device.
#include "engine/device.h"

#include <cctype>

#include "engine/error.h"

namespace rankclip {

Device parse_device(const std::string& s) {
    if (s == "cpu") return Device::cpu();
    if (s == "cuda") return Device::cuda(0);
    if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9) {
        bool digits = true;
        for (size_t i = 5; i < s.size(); i++) digits = digits && std::isdigit((unsigned char)s[i]);
        if (digits) return Device::cuda(std::stoi(s.substr(5)));
    }
    throw Error("--device must be cpu, cuda or cuda:N, got '" + s + "'");
}

}  // namespace rankclip
