// tests/mpi/dist_mpi_test.cpp
// defines: the test program of the communication layer across processes, run by `make test`
// under `mpirun --oversubscribe -np 2` when built with MPI (tools/run-tests.sh): the collectives
// are exact on known per-rank tensors (F32, F64, BF16, I64; ranks with different row counts),
// mismatched shapes are an error on every rank, and all_gather_with_grad's backward equals its
// definition and the one-process gradient of the same global computation. Every rank runs every
// test; rank 0 prints the usual report, other ranks print only their failures.
//
// `--scenario=hang|exit|die` runs no test: rank 0 calls all_reduce while rank 1 sleeps, returns
// from main, or is killed (`train-die`: tests/mpi/dist_train_test.cpp); rank 0 must end the job with a non-zero status within the timeout
// (RANKCLIP_DIST_TIMEOUT), which tools/run-tests.sh checks.
#include <csignal>
#include <cstring>
#include <thread>

#include "dist/all_gather.h"
#include "dist/comm.h"
#include "tests/test_util.h"

using namespace rankclip;
using namespace rankclip::test;

namespace {

// Rank r's tensor of (rows_of(r), 3): value 1000 r + 10 i + j + 0.25, exact in every float dtype
// used here (BF16 too for small r and i, the only case it is used).
int64_t rows_of(int r) { return r + 2; }
Tensor rank_tensor(int r, DType dtype, int64_t rows = -1) {
    if (rows < 0) rows = rows_of(r);
    Tensor t = empty({rows, 3}, DType::F64);
    double* p = t.data<double>();
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < 3; j++) p[i * 3 + j] = (dtype == DType::BF16 ? 8 : 1000) * r + 10 * i + j + 0.25;
    return t.to(dtype);
}

}  // namespace

TEST(DistMpi, Group) {
    EXPECT_EQ(dist::world_size(), dist::launcher_world_size());
    EXPECT_GE(dist::world_size(), 2) << "run under mpirun -np 2";
    EXPECT_GE(dist::local_rank(), 0);
    EXPECT_LT(dist::local_rank(), dist::local_size());
    EXPECT_EQ(dist::local_size(), dist::world_size()) << "one machine";
    EXPECT_EQ(dist::is_main(), dist::rank() == 0);
    dist::barrier();
}

TEST(DistMpi, AllReduceIsExact) {
    int world = dist::world_size();
    for (DType dtype : {DType::F32, DType::F64, DType::BF16, DType::I64}) {
        Tensor sum_expected = zeros({3, 3}, DType::F64);
        for (int r = 0; r < world; r++) sum_expected = sum_expected + rank_tensor(r, dtype, 3).to(DType::F64);
        Tensor x = rank_tensor(dist::rank(), dtype, 3);
        dist::all_reduce_(x, dist::Reduce::Sum);
        EXPECT_EQ(x.dtype(), dtype);
        expect_close(x.to(DType::F64), sum_expected.to(dtype).to(DType::F64), 0, 0,
                     std::string("sum ") + dtype_name(dtype));
        if (dtype == DType::I64) continue;
        Tensor y = rank_tensor(dist::rank(), dtype, 3);
        dist::all_reduce_(y, dist::Reduce::Mean);
        expect_close(y.to(DType::F64), (sum_expected.to(dtype) * (1.0 / world)).to(DType::F64), 0, 0,
                     std::string("mean ") + dtype_name(dtype));
    }
}

TEST(DistMpi, AllGatherIsExactWithDifferentRowCounts) {
    int world = dist::world_size();
    for (DType dtype : {DType::F32, DType::F64, DType::I64}) {
        std::vector<Tensor> parts;
        for (int r = 0; r < world; r++) parts.push_back(rank_tensor(r, dtype));
        std::vector<int64_t> rows;
        Tensor g = dist::all_gather(rank_tensor(dist::rank(), dtype), &rows);
        expect_close(g.to(DType::F64), cat(parts, 0).to(DType::F64), 0, 0, dtype_name(dtype));
        for (int r = 0; r < world; r++) EXPECT_EQ(rows[r], rows_of(r));
    }
    // a rank with no rows
    Tensor mine = dist::rank() == 0 ? empty({0, 3}, DType::F64) : rank_tensor(dist::rank(), DType::F64);
    Tensor g = dist::all_gather(mine);
    int64_t expected_rows = 0;
    for (int r = 1; r < world; r++) expected_rows += rows_of(r);
    EXPECT_EQ(g.shape(), (Shape{expected_rows, 3}));
}

TEST(DistMpi, AllGatherRefusesMismatchedShapesOnEveryRank) {
    Tensor x = zeros({2, 3 + dist::rank()}, DType::F32);
    std::string e = error_of([&] { dist::all_gather(x); });
    EXPECT_NE(e.find("only dim 0 may differ"), std::string::npos) << e;
    Tensor y = zeros({2, 3}, dist::rank() == 0 ? DType::F32 : DType::F64);
    EXPECT_NE(error_of([&] { dist::all_gather(y); }), "");
    dist::barrier();  // still in step afterwards
}

TEST(DistMpi, BroadcastIsExact) {
    int world = dist::world_size();
    for (DType dtype : {DType::F32, DType::F64, DType::I64})
        for (int root = 0; root < world; root++) {
            Tensor x = rank_tensor(dist::rank(), dtype, 4);
            dist::broadcast_(x, root);
            expect_close(x.to(DType::F64), rank_tensor(root, dtype, 4).to(DType::F64), 0, 0, dtype_name(dtype));
        }
}

// The loss of rank q is sum(all_gather(x_q) * w_q): d(sum_q L_q)/dx_r = sum_q w_q[rows of r].
TEST(DistMpi, AllGatherWithGradBackwardIsItsDefinition) {
    int world = dist::world_size(), me = dist::rank();
    int64_t total = 0, start = 0;
    for (int r = 0; r < world; r++) {
        if (r == me) start = total;
        total += rows_of(r);
    }
    std::vector<Tensor> xs, ws;
    for (int r = 0; r < world; r++) {
        xs.push_back(randn64({rows_of(r), 3}, 10 + r));
        ws.push_back(randn64({total, 3}, 100 + r));
    }
    Tensor x = xs[me].clone().set_requires_grad(true);
    Tensor gathered = dist::all_gather_with_grad(x);
    expect_close(gathered, cat(xs, 0), 0, 0, "forward");
    sum(gathered * ws[me]).backward();
    Tensor expected = zeros({rows_of(me), 3}, DType::F64);
    for (int q = 0; q < world; q++) expected = expected + ws[q].narrow(0, start, rows_of(me));
    expect_close(x.grad(), expected, 1e-15, 0, "backward");
}

// OpenCLIP's local loss: rank q's rows against all gathered rows, L_q = sum((x_q X^T) * w_q) with
// X the gathered batch. The sum over ranks of the gradients equals one process computing
// sum_q L_q over the whole batch; rank r's x gets rows r of that gradient.
TEST(DistMpi, AllGatherWithGradEqualsOneBigBatch) {
    int world = dist::world_size(), me = dist::rank();
    int64_t total = 0, start = 0;
    for (int r = 0; r < world; r++) {
        if (r == me) start = total;
        total += rows_of(r);
    }
    std::vector<Tensor> xs, ws;
    for (int r = 0; r < world; r++) {
        xs.push_back(randn64({rows_of(r), 3}, 20 + r));
        ws.push_back(randn64({rows_of(r), total}, 200 + r));
    }
    // one process, the whole batch
    Tensor big = cat(xs, 0).set_requires_grad(true);
    Tensor loss = zeros({}, DType::F64);
    int64_t offset = 0;
    for (int q = 0; q < world; q++) {
        loss = loss + sum(matmul(big.narrow(0, offset, rows_of(q)), big.transpose(0, 1)) * ws[q]);
        offset += rows_of(q);
    }
    loss.backward();
    // this rank's share
    Tensor x = xs[me].clone().set_requires_grad(true);
    sum(matmul(x, dist::all_gather_with_grad(x).transpose(0, 1)) * ws[me]).backward();
    expect_close(x.grad(), big.grad().narrow(0, start, rows_of(me)), 1e-12, 1e-14, "gradient");
}

namespace {

// Removes the default printer on ranks other than 0 and prints their failures, prefixed.
struct FailuresOnly : ::testing::EmptyTestEventListener {
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed())
            std::fprintf(stderr, "[rank %d] FAILED at %s:%d\n%s\n", dist::rank(), r.file_name() ? r.file_name() : "?",
                         r.line_number(), r.summary());
    }
};

int run_scenario(const std::string& scenario) {
    if (dist::rank() == 1) {
        if (scenario == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
        if (scenario == "die") std::raise(SIGKILL);
        return 0;  // "exit": leaves main without taking part (MPI_Finalize at exit)
    }
    Tensor x = zeros({4}, DType::F32);
    dist::all_reduce_(x, dist::Reduce::Sum);
    std::fprintf(stderr, "rank %d: all_reduce returned although rank 1 never joined\n", dist::rank());
    return 0;
}

}  // namespace

int run_training_scenario(const std::string& scenario);  // tests/mpi/dist_train_test.cpp

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        if (std::strncmp(argv[i], "--scenario=", 11) != 0) continue;
        const int status = run_training_scenario(argv[i] + 11);  // -1: not a training scenario
        return status >= 0 ? status : run_scenario(argv[i] + 11);
    }
    ::testing::InitGoogleTest(&argc, argv);
    dist::init();
    if (dist::rank() != 0) {
        auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
        listeners.Append(new FailuresOnly);
    }
    int status = RUN_ALL_TESTS();
    dist::barrier();
    return status;
}
