// tests/cli_test_util.h
// defines: what the suites that run the `rankclip` program share — where the binary is
// ($RANKCLIP_BIN, else `rankclip` beside the test binary, where make builds it), REQUIRE_BINARY[_FOR]
// (skip, saying so, when it is not built), run (the program with its output captured) and slurp.
#pragma once
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace rankclip::test {

inline std::string rankclip_binary() {
    if (const char* env = std::getenv("RANKCLIP_BIN")) return env;
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return "";
    self[n] = '\0';
    return (std::filesystem::path(self).parent_path() / "rankclip").string();
}

// Declares `bin` and skips the test, saying what is not run (`what`, e.g. "bench CLI tests"), when
// the program is not there.
#define REQUIRE_BINARY_FOR(what)                                                                         \
    const std::string bin = ::rankclip::test::rankclip_binary();                                         \
    if (bin.empty() || ::access(bin.c_str(), X_OK) != 0)                                                 \
        GTEST_SKIP() << "the rankclip program is not built at '" << bin                                  \
                     << "' (make builds it beside run_tests; or set RANKCLIP_BIN): " << (what) << " not run";
#define REQUIRE_BINARY() REQUIRE_BINARY_FOR("CLI tests")

inline std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct CliResult {
    int status = -1;  // the exit status
    std::string out, err;
};

// Runs `bin args` with stdout and stderr captured into files of `dir`.
inline CliResult run_cli(const std::string& bin, const std::string& args, const TempDir& dir) {
    const std::string out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
    int raw = std::system((bin + " " + args + " > " + out + " 2> " + err).c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

}  // namespace rankclip::test
