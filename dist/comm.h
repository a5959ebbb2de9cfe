// dist/comm.h
// defines: the communication layer of data-parallel training: the process group (rank, world
// size, local rank, read from the launcher's environment), the collectives all_reduce (sum,
// mean), all_gather (along dim 0), broadcast and barrier on CPU tensors (through MPI) and CUDA
// tensors (through NCCL), the timeout that bounds every wait, and abort().
//
// One process when not launched by an MPI launcher (mpirun, or Slurm's srun through MPI): then
// rank 0 of 1, every collective is the identity, and MPI is never initialised. A build without
// MPI (MPI=0, or libopenmpi-dev absent) has only that path, and is an error when the launcher
// says there are several processes. Files: dist/comm.cpp (this front end: the group, argument
// checks, dispatch by device), dist/mpi_comm.cpp or dist/no_mpi.cpp (the CPU transport),
// dist/nccl_comm.cpp or dist/no_nccl.cpp (the CUDA transport), dist/transport.h between them.
//
// Every rank must make the same collective calls in the same order with tensors of the same
// dtype and (except all_gather's dim 0) shape; all_gather checks this, the others trust it.
// A wait longer than timeout_seconds() (RANKCLIP_DIST_TIMEOUT, default 600) means another rank
// died or hangs: the rank prints which call timed out and ends the whole job (MPI_Abort).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace rankclip::dist {

enum class Reduce { Sum, Mean };

// The process group, set up on first use (any function below). Idempotent.
void init();
int rank();
int world_size();
int local_rank();  // rank among the processes of this machine (which GPU to use)
int local_size();  // processes on this machine
bool is_main();    // rank() == 0: the one that prints, logs and writes files

// While one lives, this process is a world of one: rank() 0, world_size() 1, every collective
// the identity (CUDA tensors included). For work a rank does on its own, such as the tests'
// one-process reference runs. Not thread-safe: create it on the thread that runs the collectives.
class LocalScope {
public:
    LocalScope();
    ~LocalScope();
    LocalScope(const LocalScope&) = delete;
    LocalScope& operator=(const LocalScope&) = delete;
};

// What this build has: the MPI transport (CPU tensors, and anything beyond one process) and the
// NCCL transport (CUDA tensors).
bool built_with_mpi();
bool built_with_nccl();

// The number of processes the launcher's environment announces (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
// or SLURM_NTASKS under a PMIx launch), 1 when not launched. Read before MPI is initialised.
int launcher_world_size();
// Throws an Error saying what to do when `launched` processes were asked for and this build
// cannot provide them (built without MPI). The check init() makes, exposed for tests.
void check_launch(int launched, bool have_mpi);

// Seconds any collective may wait: RANKCLIP_DIST_TIMEOUT at start-up (a positive number), 600
// when unset. Setting it applies to the calls that follow.
double timeout_seconds();
void set_timeout_seconds(double seconds);

// In place over a contiguous tensor, on its device. Mean divides by the world size (floating
// dtypes only). BF16 is summed in F32 on the CPU.
void all_reduce_(Tensor& t, Reduce op = Reduce::Sum);
// The ranks' (B_r, ...) tensors concatenated in rank order: (sum_r B_r, ...). B_r may differ;
// the other dims and the dtype must agree (an Error otherwise, on every rank). No gradient: the
// differentiable op is all_gather_with_grad (dist/all_gather.h). `rows`, when given, receives
// every rank's B_r.
Tensor all_gather(const Tensor& t, std::vector<int64_t>* rows = nullptr);
// rank `root`'s values into t on every rank (t contiguous, same shape and dtype everywhere).
void broadcast_(Tensor& t, int root = 0);
void barrier();

// What this process's collectives have cost since the last reset: calls, the seconds spent in
// them (waiting for slower ranks included) and the bytes of their tensors (each call counts the
// bytes it holds: all_reduce and broadcast the tensor, all_gather the gathered result). A world
// of one counts nothing. For `rankclip bench` under mpirun.
struct CommStats {
    int64_t calls = 0;
    double seconds = 0.0;
    int64_t bytes = 0;
};
CommStats comm_stats();
void reset_comm_stats();

// Prints "rankclip: rank r/N: message" to stderr and ends every rank of the job (exit status 3;
// without MPI: this process).
[[noreturn]] void abort(const std::string& message);

}  // namespace rankclip::dist
