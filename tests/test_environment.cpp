// tests/test_environment.cpp
// defines: the suite's global environment: the tests are hermetic, so variables a user may have set
// for their own runs and that change what the library does are cleared before any test runs (the
// commands the CLI tests start inherit that). RANKCLIP_VOCAB: the default vocabulary of train,
// embed and eval (the trainer tests expect the synthetic data's own). The test that checks the
// variable sets it itself.
#include <gtest/gtest.h>

#include <cstdlib>

namespace {

class HermeticEnvironment : public testing::Environment {
public:
    void SetUp() override { unsetenv("RANKCLIP_VOCAB"); }
};

const testing::Environment* const hermetic = testing::AddGlobalTestEnvironment(new HermeticEnvironment);

}  // namespace
