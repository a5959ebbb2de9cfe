// engine/device.h
// defines: Device, the place a tensor's storage lives (the CPU, or CUDA device i), and its parsing.
#pragma once
#include <cstdint>
#include <string>

namespace rankclip {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
    DeviceType type = DeviceType::CPU;
    int index = 0;

    static Device cpu() { return {DeviceType::CPU, 0}; }
    static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
    bool is_cpu() const { return type == DeviceType::CPU; }
    bool is_cuda() const { return type == DeviceType::CUDA; }
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
    bool operator!=(const Device& o) const { return !(*this == o); }
    std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// "cpu", "cuda" (device 0) or "cuda:N", as the command line takes them (--device); an Error otherwise.
// Whether the device exists is the caller's question (has_backend, engine/backend.h).
Device parse_device(const std::string& name);

}  // namespace rankclip
