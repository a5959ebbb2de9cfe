// tests/test_atomic_file.cpp
// engine/atomic_file.h: a whole-file write replaces the target or leaves it as it was, never a
// temporary file behind; failures are Errors naming the file and errno's text; the temporary
// names are recognised (for the trainer's sweep of a killed run's leftovers).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/atomic_file.h"
#include "test_util.h"

using namespace rankclip;
using namespace rankclip::test;
namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The names in `dir` that are AtomicFile temporary files.
std::vector<std::string> temp_files_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (!atomic_temp_target(e.path().filename().string()).empty()) out.push_back(e.path().string());
    return out;
}

}  // namespace

TEST(AtomicFile, WritesAndReplacesWholeFiles) {
    TempDir dir("rankclip_atomic");
    const std::string path = dir.file("a.txt");
    write_file_atomic(path, "first");
    EXPECT_EQ(read_all(path), "first");
    write_file_atomic(path, std::string("sec\0ond", 7));
    EXPECT_EQ(read_all(path), std::string("sec\0ond", 7));
    write_file_atomic(path, "");
    EXPECT_TRUE(fs::exists(path));
    EXPECT_EQ(fs::file_size(path), 0u);
    EXPECT_TRUE(temp_files_in(dir.path).empty());
}

TEST(AtomicFile, AFailedWriteLeavesTheOldFileAndNoTemporaryFile) {
    TempDir dir("rankclip_atomic_fail");
    // the parent is a file: the temporary file cannot be created
    write_file_atomic(dir.file("plain"), "x");
    std::string err = error_of([&] { write_file_atomic(dir.file("plain/child.txt"), "data"); });
    EXPECT_NE(err.find("plain/child.txt"), std::string::npos) << err;
    EXPECT_NE(err.find("Not a directory"), std::string::npos) << err;

    // the target is a directory: the rename fails; the directory and its content stay
    fs::create_directories(dir.file("target/inside"));
    err = error_of([&] { write_file_atomic(dir.file("target"), "data"); });
    EXPECT_NE(err.find(dir.file("target")), std::string::npos) << err;
    EXPECT_NE(err.find("rename"), std::string::npos) << err;
    EXPECT_TRUE(fs::is_directory(dir.file("target/inside")));
    EXPECT_TRUE(temp_files_in(dir.path).empty());

    // a writer that stops before commit() (an exception mid-way) leaves the old file as it was
    const std::string path = dir.file("kept.txt");
    write_file_atomic(path, "old content");
    {
        AtomicFile f(path);
        f.write("new content, never committed");
        EXPECT_TRUE(fs::exists(f.temp_path()));
    }
    EXPECT_EQ(read_all(path), "old content");
    EXPECT_TRUE(temp_files_in(dir.path).empty());
}

TEST(AtomicFile, WritesThroughTheDescriptorAtOffsets) {
    TempDir dir("rankclip_atomic_fd");
    const std::string path = dir.file("p.bin");
    AtomicFile f(path);
    ASSERT_EQ(::pwrite(f.fd(), "cd", 2, 2), 2);
    ASSERT_EQ(::pwrite(f.fd(), "ab", 2, 0), 2);
    EXPECT_FALSE(fs::exists(path));  // nothing visible before commit
    f.commit();
    EXPECT_EQ(read_all(path), "abcd");
    EXPECT_NE(error_of([&] { f.commit(); }).find("twice"), std::string::npos);
}

TEST(AtomicFile, RecognisesItsTemporaryNames) {
    EXPECT_EQ(atomic_temp_target("metrics.jsonl.tmp.1234"), "metrics.jsonl");
    EXPECT_EQ(atomic_temp_target("step_00000002.safetensors.tmp.7"), "step_00000002.safetensors");
    EXPECT_EQ(atomic_temp_target("a.tmp.b.tmp.99"), "a.tmp.b");
    EXPECT_EQ(atomic_temp_target("metrics.jsonl"), "");
    EXPECT_EQ(atomic_temp_target("metrics.jsonl.tmp."), "");
    EXPECT_EQ(atomic_temp_target("metrics.jsonl.tmp.12x"), "");
    EXPECT_EQ(atomic_temp_target(".tmp.12"), "");
    AtomicFile f("/tmp/rankclip_atomic_name_probe");
    EXPECT_EQ(atomic_temp_target(fs::path(f.temp_path()).filename().string()), "rankclip_atomic_name_probe");
}
