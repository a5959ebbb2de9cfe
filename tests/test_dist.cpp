// tests/test_dist.cpp
// defines: tests of the communication layer (dist/) in one process: the world of one (every
// collective the identity, on the CPU and, with a GPU, through NCCL), argument errors, the
// launcher environment and the error of a build without MPI launched as several processes, the
// timeout setting, and the F64 gradient check of all_gather_with_grad. The same layer across
// two processes is tested by tests/mpi/dist_mpi_test.cpp under mpirun.
#include <cstdlib>

#include "dist/all_gather.h"
#include "dist/comm.h"
#include "tests/cuda_test_util.h"
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

TEST(Dist, OneProcessWhenNotLaunched) {
    EXPECT_EQ(dist::world_size(), 1);
    EXPECT_EQ(dist::rank(), 0);
    EXPECT_EQ(dist::local_rank(), 0);
    EXPECT_EQ(dist::local_size(), 1);
    EXPECT_TRUE(dist::is_main());
    dist::barrier();
}

TEST(Dist, CollectivesAreTheIdentityInAWorldOfOne) {
    for (DType dtype : {DType::F32, DType::F64, DType::BF16}) {
        Tensor x = randn64({4, 3}, 1).to(dtype);
        Tensor expected = x.clone();
        for (dist::Reduce op : {dist::Reduce::Sum, dist::Reduce::Mean}) {
            dist::all_reduce_(x, op);
            expect_close(x, expected, 0, 0, "all_reduce");
        }
        dist::broadcast_(x, 0);
        expect_close(x, expected, 0, 0, "broadcast");
        std::vector<int64_t> rows;
        Tensor g = dist::all_gather(x, &rows);
        expect_close(g, expected, 0, 0, "all_gather");
        EXPECT_EQ(rows, std::vector<int64_t>{4});
        EXPECT_NE(g.raw_data(), x.raw_data()) << "all_gather returns a new tensor";
    }
    Tensor ids = arange(0, 6, 1, DType::I64);
    dist::all_reduce_(ids, dist::Reduce::Sum);
    EXPECT_EQ(ids.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(Dist, ArgumentErrorsNameTheCall) {
    Tensor x = randn64({4, 3}, 2);
    Tensor t = x.transpose(0, 1);
    EXPECT_NE(error_of([&] { dist::all_reduce_(t, dist::Reduce::Sum); }).find("contiguous"), std::string::npos);
    EXPECT_NE(error_of([&] { dist::broadcast_(x, 1); }).find("root 1"), std::string::npos);
    Tensor ids = arange(0, 6, 1, DType::I64);
    EXPECT_NE(error_of([&] { dist::all_reduce_(ids, dist::Reduce::Mean); }).find("Reduce::Sum"), std::string::npos);
    Tensor scalar = full({}, 1.0);
    EXPECT_NE(error_of([&] { dist::all_gather(scalar); }).find("dim 0"), std::string::npos);
}

TEST(Dist, LauncherEnvironment) {
    const char* names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_NTASKS"};
    std::vector<std::string> saved;
    for (const char* n : names) {
        saved.push_back(std::getenv(n) ? std::getenv(n) : std::string("\x01"));
        ::unsetenv(n);
    }
    EXPECT_EQ(dist::launcher_world_size(), 1);
    ::setenv("SLURM_NTASKS", "8", 1);
    EXPECT_EQ(dist::launcher_world_size(), 1) << "SLURM_NTASKS alone is an sbatch script, not a launch";
    ::setenv("PMIX_RANK", "0", 1);
    EXPECT_EQ(dist::launcher_world_size(), 8);
    ::setenv("PMI_SIZE", "3", 1);
    EXPECT_EQ(dist::launcher_world_size(), 3);
    ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    EXPECT_EQ(dist::launcher_world_size(), 2);
    ::setenv("OMPI_COMM_WORLD_SIZE", "two", 1);
    EXPECT_NE(error_of([] { dist::launcher_world_size(); }).find("OMPI_COMM_WORLD_SIZE"), std::string::npos);
    for (size_t i = 0; i < saved.size(); i++)
        if (saved[i] == "\x01")
            ::unsetenv(names[i]);
        else
            ::setenv(names[i], saved[i].c_str(), 1);
}

TEST(Dist, SeveralProcessesWithoutMpiIsAnError) {
    EXPECT_EQ(error_of([] { dist::check_launch(1, false); }), "");
    EXPECT_EQ(error_of([] { dist::check_launch(4, true); }), "");
    std::string e = error_of([] { dist::check_launch(2, false); });
    EXPECT_NE(e.find("one of 2 processes"), std::string::npos) << e;
    EXPECT_NE(e.find("built without MPI"), std::string::npos) << e;
    EXPECT_NE(e.find("make MPI=1"), std::string::npos) << e;
}

// End to end: a fresh process (the "threadsafe" death test re-runs this binary, so dist::init()
// has not run there) that believes mpirun started it as one of two. Only meaningful, and safe (no
// MPI_Init with a made-up environment), in a build without MPI.
TEST(Dist, LaunchedAsTwoWithoutMpiFailsAtInit) {
    if (dist::built_with_mpi()) GTEST_SKIP() << "built with MPI (the check itself is tested above)";
    std::string style = GTEST_FLAG_GET(death_test_style);
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
            try {
                dist::init();
            } catch (const Error& err) {
                std::fprintf(stderr, "%s\n", err.what());
                std::_Exit(7);
            }
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(7), "launched as one of 2 processes.*built without MPI");
    GTEST_FLAG_SET(death_test_style, style);
}

TEST(Dist, Timeout) {
    double before = dist::timeout_seconds();
    EXPECT_GT(before, 0);
    dist::set_timeout_seconds(2.5);
    EXPECT_EQ(dist::timeout_seconds(), 2.5);
    EXPECT_NE(error_of([] { dist::set_timeout_seconds(0); }), "");
    dist::set_timeout_seconds(before);
}

TEST(DistGradcheck, AllGatherWithGradIsTheIdentityInAWorldOfOne) {
    gradcheck([](const std::vector<Tensor>& in) { return dist::all_gather_with_grad(in[0]); }, {randn64({3, 4}, 3)});
    // a non-contiguous input, and the gathered tensor used beside the local one (OpenCLIP's local
    // loss: this rank's rows against all gathered columns)
    gradcheck(
        [](const std::vector<Tensor>& in) {
            Tensor x = in[0].transpose(0, 1);  // (4, 3), a view
            return matmul(x, dist::all_gather_with_grad(x).transpose(0, 1));
        },
        {randn64({3, 4}, 4)});
    Tensor x = randn64({5, 2}, 5);
    x.set_requires_grad(true);
    Tensor y = dist::all_gather_with_grad(x);
    expect_close(y, x, 0, 0, "forward");
    EXPECT_TRUE(y.requires_grad());
}

TEST(Dist, CudaTensorsInAWorldOfOne) {
    std::string why = no_real_cuda_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    for (DType dtype : {DType::F32, DType::F64, DType::BF16}) {
        Tensor host = randn64({6, 5}, 6).to(dtype);
        Tensor x = host.to(Device::cuda(0));
        dist::all_reduce_(x, dist::Reduce::Sum);
        dist::all_reduce_(x, dist::Reduce::Mean);
        dist::broadcast_(x, 0);
        expect_close(x.to(Device::cpu()), host, 0, 0, "all_reduce / broadcast on cuda");
        Tensor g = dist::all_gather(x);
        EXPECT_EQ(g.device(), Device::cuda(0));
        expect_close(g.to(Device::cpu()), host, 0, 0, "all_gather on cuda");
    }
}
