// tools/cmd_mlp.cpp
// defines: cmd_mlp, the `rankclip mlp` subcommand — a tiny end-to-end use of the engine:
// y = x tanh(3x) + noise, fitted by a 1-64-64-1 MLP with GELU and plain SGD with momentum. Prints
// the loss every 25 steps; it must fall by orders of magnitude.
#include <chrono>
#include <cstdio>
#include <limits>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "tools/cli_args.h"

using namespace rankclip;

static void mlp_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip mlp [--steps N] [--seed S] [--threads T]\n"
                 "  fit a small MLP to y = x tanh(3x) + noise with SGD (default 300 steps, seed 0),\n"
                 "  printing the loss as it falls; exits 1 when it did not fall.\n");
}

int cmd_mlp(int argc, char** argv) {
    int steps = 300;
    uint64_t seed = 0;
    ArgReader args("mlp", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            mlp_usage(stdout);
            return 0;
        } else if (a == "--steps") steps = args.int_value(1);
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else if (a == "--threads") set_num_threads(args.int_value(1));
        else args.unknown();
    }
    Generator gen(seed);
    const int64_t N = 256, H = 64;
    Tensor x = rand({N, 1}, gen) * 4.0 - 2.0;                            // (N, 1) in [-2, 2)
    Tensor y = x * tanh(x * 3.0) + randn({N, 1}, gen) * 0.05;           // (N, 1)
    std::vector<Tensor> params = {
        (randn({1, H}, gen) * 1.0).set_requires_grad(),                  // w1 (1, H)
        zeros({H}).set_requires_grad(),                                   // b1 (H)
        (randn({H, H}, gen) * (1.0 / 8.0)).set_requires_grad(),          // w2 (H, H)
        zeros({H}).set_requires_grad(),                                   // b2 (H)
        (randn({H, 1}, gen) * (1.0 / 8.0)).set_requires_grad(),          // w3 (H, 1)
        zeros({1}).set_requires_grad(),                                   // b3 (1)
    };
    std::vector<Tensor> velocity;
    for (const Tensor& p : params) velocity.push_back(zeros_like(p));
    const double lr = 0.05, momentum = 0.9;
    std::printf("mlp: fitting y = x tanh(3x) + noise with a 1-%lld-%lld-1 GELU MLP, %d steps of SGD\n",
                (long long)H, (long long)H, steps);
    auto start = std::chrono::steady_clock::now();
    double first = 0, last = 0;
    for (int step = 0; step < steps; step++) {
        Tensor h = gelu(matmul(x, params[0]) + params[1]);                // (N, H)
        h = gelu(matmul(h, params[2]) + params[3]);                       // (N, H)
        Tensor pred = matmul(h, params[4]) + params[5];                   // (N, 1)
        Tensor diff = pred - y;
        Tensor loss = mean(diff * diff);
        for (Tensor& p : params) p.zero_grad();
        loss.backward();
        {
            NoGradGuard no_grad;
            for (size_t i = 0; i < params.size(); i++) {
                velocity[i].mul_(momentum).add_(params[i].grad());
                params[i].add_(velocity[i], -lr);
            }
        }
        last = loss.item();
        if (step == 0) first = last;
        if (step % 25 == 0 || step == steps - 1) {
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::printf("step %4d  loss %.6f  (%.1f steps/s)\n", step, last, (step + 1) / secs);
        }
    }
    std::printf("mlp: loss %.6f -> %.6f (%.0fx lower)\n", first, last, first / last);
    return last < first ? 0 : 1;
}
