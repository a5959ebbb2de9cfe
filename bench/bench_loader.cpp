// bench/bench_loader.cpp
// defines: the data loader benchmark program (`make bench` runs it after bench_models). It asks
// whether the loader keeps up with training: images/s that the DataLoader delivers, against the
// images/s that the `tiny` training step consumes.
//
// Fixtures, built in a temporary directory (removed at the end): N synthetic images (default 512)
// rendered at 256 x 256 and written as JPEG (quality 90) with an OpenCLIP captions CSV; a small
// BPE vocabulary (1024 entries) trained on their captions; the CSV packed (data/packed.h) at 32 px
// and at 224 px with the tokens stored (context length of the tiny config).
//
// Cases (training-like: shuffle, captions tokenized, batch 64, last partial batch dropped, and,
// unless _noaug, random resized crop scale 0.9-1.0 + horizontal flip), each with 1 worker and
// with one worker per thread:
//   loader_jpeg_224    CSV + JPEG: decode 256 px, crop, bicubic resize to 224, normalise, tokenize
//   loader_jpeg_32     the same to 32 px (the tiny model's input)
//   loader_packed_224  packed shard at 224: mmap read, crop + resize back to 224, normalise; stored tokens
//   loader_packed_32   packed shard at 32, likewise
//   loader_packed_224_noaug, loader_packed_32_noaug   packed, no augmentation: copy + normalise only
// Method: one untimed epoch (starts the workers, fills the page cache), then whole epochs until
// at least 1 s (0.2 s with --quick) have passed; images_per_s = images delivered / seconds, as
// the consumer sees them (next() returning), so pipeline start-up per epoch is included.
// Then the consumption rate: forward + backward of the tiny CLIP model at batch 64 with the
// CLIP loss, timed as bench_models.cpp does (bench_timing.h's median).
//
// One JSON line per case:
//   {"impl":"rankclip","case":"loader_jpeg_224","workers":2,"threads":2,"batch":64,"image_size":224,
//    "augment":true,"images":1024,"seconds":...,"ms_per_batch":...,"images_per_s":...}
//   {"impl":"rankclip","case":"train_step_tiny","batch":64,"threads":2,"ms_per_step":...,"images_per_s":...}
// The lines carry no "median_ms", so tools/bench_compare.py leaves them out of the PyTorch table
// (there is no PyTorch counterpart). A short summary goes to stderr.
//
// Usage: bench_loader [--threads N] [--quick] [--n N] [--keep]
//   --quick  CI smoke: 192 images and shorter timing.   --keep  leave the fixture directory.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_timing.h"
#include "data/bpe_trainer.h"
#include "data/csv_dataset.h"
#include "data/image_write.h"
#include "data/loader.h"
#include "data/packed.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/clip.h"

using namespace rankclip;
using namespace rankclip::bench;
namespace fs = std::filesystem;

namespace {

struct Options {
    int threads = 0;     // 0: all cores (or RANKCLIP_THREADS)
    bool quick = false;
    int64_t n = 0;       // 0: 512, or 192 with --quick
    bool keep = false;
};

constexpr int kSourceSize = 256;    // fixture JPEGs, pixels per side
constexpr int64_t kBatch = 64;
constexpr int64_t kVocabSize = 1024;

// Runs f(i) for i in [0, n) on `threads` std::threads (fixtures only; not timed). The first
// exception thrown by f stops the others and is rethrown here.
template <typename F>
void parallel_indices(int64_t n, int threads, F&& f) {
    std::atomic<int64_t> next{0};
    std::mutex mu;
    std::exception_ptr error;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&] {
            try {
                for (int64_t i = next++; i < n; i = next++) f(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mu);
                if (!error) error = std::current_exception();
                next = n;
            }
        });
    for (std::thread& th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

std::string csv_quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

struct Fixtures {
    fs::path dir;
    std::string csv, packed32, packed224;
    Tokenizer tokenizer;
    int context_length = 0;
};

// A fresh directory under $TMPDIR (or /tmp).
fs::path make_temp_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/rankclip-bench-loader-XXXXXX";
    RC_CHECK(::mkdtemp(pattern.data()) != nullptr, "cannot create a temporary directory from ",
             pattern);
    return pattern;
}

Fixtures build_fixtures(const fs::path& dir, int64_t n, int threads) {
    Fixtures fx;
    fx.dir = dir;
    fs::create_directories(fx.dir / "images");

    // JPEGs of the synthetic training split at 256 px, and their captions
    SyntheticConfig sc;
    sc.n = size_t(n);
    sc.image_size = kSourceSize;
    SyntheticDataset synth(sc, SyntheticSplit::Train, 0);
    std::vector<std::string> captions(n), files(n);
    parallel_indices(n, threads, [&](int64_t i) {
        Sample s = synth.get(size_t(i));
        char name[32];
        std::snprintf(name, sizeof name, "images/%06lld.jpg", (long long)i);
        write_jpeg((fx.dir / name).string(), s.image, 90);
        files[i] = name;
        captions[i] = s.caption;
    });
    fx.csv = (fx.dir / "captions.csv").string();
    {
        std::ofstream out(fx.csv, std::ios::binary);
        out << "filepath,title\n";
        for (int64_t i = 0; i < n; i++) out << files[i] << ',' << csv_quote(captions[i]) << '\n';
        RC_CHECK(out.good(), "cannot write ", fx.csv);
    }

    // a small trained vocabulary, as the synthetic data uses by default
    fx.tokenizer = Tokenizer::from_merges(train_bpe(captions, kVocabSize));
    fx.context_length = int(clip_config("tiny").context_length);

    CsvDataset csv(fx.csv);
    for (int size : {32, 224}) {
        PackOptions po;
        po.image_size = size;
        po.tokenizer = &fx.tokenizer;
        po.context_length = fx.context_length;
        po.num_threads = threads;
        std::string out = (fx.dir / ("packed" + std::to_string(size) + ".rcpack")).string();
        pack_dataset(csv, out, po);
        (size == 32 ? fx.packed32 : fx.packed224) = out;
    }
    return fx;
}

struct LoaderResult {
    int64_t images = 0;
    double seconds = 0;
    int64_t batches = 0;
};

LoaderResult time_loader(const Dataset& data, const LoaderOptions& lo, bool quick) {
    DataLoader loader(data, lo);
    Batch batch;
    // warm-up epoch: thread start, page cache, allocator
    loader.start_epoch(0);
    while (loader.next(batch)) {
    }
    const double min_s = quick ? 0.2 : 1.0;
    LoaderResult r;
    auto t0 = Clock::now();
    for (int64_t epoch = 1; r.seconds < min_s; epoch++) {
        loader.start_epoch(epoch);
        while (loader.next(batch)) {
            r.images += batch.images.size(0);
            r.batches++;
        }
        r.seconds = seconds_since(t0);
    }
    return r;
}

// The tiny training step (forward + CLIP loss + backward) at batch 64, as bench_models.cpp.
double train_step_ms(bool quick, int64_t B) {
    const CLIPConfig config = clip_config("tiny");
    const int64_t S = config.image_size, L = config.context_length, V = config.vocab_size;
    Generator gen(1234);
    CLIP model(config, gen);
    Tensor images = randn({B, 3, S, S}, gen);  // (B, 3, S, S)
    std::vector<int64_t> ids = randint(1, V - 1, {B, L}, gen).to_vector<int64_t>();
    for (int64_t b = 0; b < B; b++) {
        int64_t eot = L / 2 + b % (L / 2);
        ids[b * L + eot] = V - 1;
        for (int64_t t = eot + 1; t < L; t++) ids[b * L + t] = 0;
    }
    Tensor text = from_vector(ids, {B, L}, DType::I64, Device::cpu());  // (B, L)
    Tensor labels = arange(0, double(B), 1, DType::I64, Device::cpu());
    Timing t = time_median(Device::cpu(), quick, [&] {
        model.zero_grad();
        CLIPOutput out = model.forward(images, text);
        Tensor loss = (cross_entropy(out.logits_per_image, labels) +
                       cross_entropy(out.logits_per_image.t(), labels)) * 0.5;
        loss.backward();
    });
    return t.median_ms;
}

Options parse_args(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            RC_CHECK(i + 1 < argc, arg, " needs a value");
            return argv[++i];
        };
        if (arg == "--threads") {
            opt.threads = std::atoi(value().c_str());
            RC_CHECK(opt.threads > 0, "--threads needs a positive count");
        } else if (arg == "--quick") {
            opt.quick = true;
        } else if (arg == "--n") {
            opt.n = std::atoll(value().c_str());
            RC_CHECK(opt.n >= kBatch, "--n needs at least one batch (", kBatch, ") of images");
        } else if (arg == "--keep") {
            opt.keep = true;
        } else if (arg == "--device") {
            // run-bench.sh passes the same arguments to every program: the loader is CPU work
            std::string d = value();
            if (d != "cpu") {
                print_line(Json::object({{"impl", "rankclip"}, {"skip", "bench_loader runs on the CPU only"}}));
                std::exit(0);
            }
        } else if (arg == "--help" || arg == "-h") {
            std::printf("usage: bench_loader [--threads N] [--quick] [--n N] [--keep]\n");
            std::exit(0);
        } else {
            throw Error(str_cat("unknown argument '", arg, "' (see --help)"));
        }
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    use_short_openmp_spin(argv);  // our programs' OpenMP wait policy (engine/parallel.cpp)
    fs::path dir;
    bool keep = false;
    try {
        Options opt = parse_args(argc, argv);
        keep = opt.keep;
        if (opt.threads > 0) set_num_threads(opt.threads);
        const int threads = get_num_threads();
        const int64_t n = opt.n > 0 ? opt.n : opt.quick ? 192 : 512;

        auto t0 = Clock::now();
        dir = make_temp_dir();
        Fixtures fx = build_fixtures(dir, n, threads);
        std::fprintf(stderr, "bench_loader: %lld fixture images (%d px JPEG, CSV, packed at 32 and 224) in %.1f s under %s\n",
                     (long long)n, kSourceSize, seconds_since(t0), fx.dir.c_str());

        CsvDataset csv(fx.csv);
        PackedDataset packed32(fx.packed32), packed224(fx.packed224);
        struct Case {
            const char* name;
            const Dataset* data;
            int size;
            bool augment;
        };
        const Case cases[] = {{"loader_jpeg_224", &csv, 224, true},
                              {"loader_jpeg_32", &csv, 32, true},
                              {"loader_packed_224", &packed224, 224, true},
                              {"loader_packed_32", &packed32, 32, true},
                              {"loader_packed_224_noaug", &packed224, 224, false},
                              {"loader_packed_32_noaug", &packed32, 32, false}};
        std::vector<int> worker_counts = {1};
        if (threads > 1) worker_counts.push_back(threads);

        std::vector<std::pair<std::string, double>> rates;
        for (const Case& c : cases) {
            for (int workers : worker_counts) {
                LoaderOptions lo;
                lo.batch_size = kBatch;
                lo.shuffle = true;
                lo.drop_last = true;
                lo.seed = 7;
                lo.num_workers = workers;
                lo.prefetch = std::max(4, 2 * workers);
                lo.augment = c.augment;
                lo.augment_options.hflip = c.augment;
                lo.image_size = c.size;
                lo.tokenizer = &fx.tokenizer;
                lo.context_length = fx.context_length;
                LoaderResult r = time_loader(*c.data, lo, opt.quick);
                double rate = r.images / r.seconds;
                Json line = Json::object();
                line.set("impl", "rankclip");
                line.set("device", "cpu");
                line.set("case", c.name);
                line.set("workers", workers);
                line.set("threads", threads);
                line.set("batch", kBatch);
                line.set("image_size", c.size);
                line.set("augment", c.augment);
                line.set("images", r.images);
                line.set("seconds", round4(r.seconds));
                line.set("ms_per_batch", round4(r.seconds * 1e3 / double(r.batches)));
                line.set("images_per_s", round4(rate));
                print_line(line);
                rates.emplace_back(str_cat(c.name, " (", workers, workers == 1 ? " worker)" : " workers)"), rate);
            }
        }

        double step_ms = train_step_ms(opt.quick, kBatch);
        double step_rate = kBatch / (step_ms * 1e-3);
        Json line = Json::object();
        line.set("impl", "rankclip");
        line.set("device", "cpu");
        line.set("case", "train_step_tiny");
        line.set("batch", kBatch);
        line.set("threads", threads);
        line.set("ms_per_step", round4(step_ms));
        line.set("images_per_s", round4(step_rate));
        print_line(line);

        std::fprintf(stderr, "bench_loader: the tiny training step consumes %.4g images/s (%d threads); the loader delivers:\n",
                     step_rate, threads);
        for (const auto& [name, rate] : rates)
            std::fprintf(stderr, "  %-34s %10.4g images/s  (%.3gx the step)\n", name.c_str(), rate, rate / step_rate);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_loader: %s\n", e.what());
        if (!dir.empty() && !keep) fs::remove_all(dir);
        return 1;
    }
    if (!dir.empty() && !keep) fs::remove_all(dir);
    return 0;
}
