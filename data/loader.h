// data/loader.h
// defines: DataLoader, which turns a Dataset into batches {images (B, 3, S, S) F32 normalised,
// text (B, T) I64 token ids, labels (B) I64} with worker threads and a bounded prefetch queue.
//
// Determinism: the order of an epoch is randperm(N) from a Generator seeded with
// mix(seed, epoch); each sample's augmentation uses its own Generator seeded with
// mix(seed, epoch, index). Workers build whole batches, and batches are handed out in batch
// order, so the batches are identical for any number of workers (0 = build in the caller).
// The dataset must outlive the loader; its get() must be thread-safe (the interface requires it).
// Bad samples are the dataset's business (its skip/stop policy); an Error thrown while building
// a batch is rethrown by next().
// Packed datasets take a fast path: pixels already S x S are only normalised (or augmented), and
// stored token ids are used when their context length matches (no tokenizer needed).
// Pinned host memory: with LoaderOptions::pin_memory the workers build each batch's tensors in
// page-locked memory (empty_pinned, engine/tensor.h), so batch.images.to(Device::cuda()) is a
// direct DMA instead of a copy staged through the driver's buffer. The blocks come from the CUDA
// backend's caching pinned allocator (cuda/allocator.h), so steady-state batches reuse them
// instead of pinning anew. The batches are ordinary CPU tensors with the same contents either
// way; without a usable GPU (or in a CPU-only build) pin_memory gives plain memory, no error.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "engine/tensor.h"

namespace rankclip {

class Tokenizer;
class PackedDataset;

struct LoaderOptions {
    int64_t batch_size = 32;
    bool shuffle = true;
    bool drop_last = true;          // training: drop the last partial batch
    uint64_t seed = 0;
    int num_workers = 2;            // 0: batches are built in the calling thread
    int prefetch = 4;               // batches built ahead of the consumer (>= 1)
    bool augment = false;           // random resized crop (+ flip) instead of center crop
    AugmentOptions augment_options;
    int image_size = 224;
    // null: text is undefined unless packed tokens exist, except for a SyntheticDataset, whose
    // captions then use synthetic_default_tokenizer() (data/synthetic.h).
    const Tokenizer* tokenizer = nullptr;
    int context_length = 77;
    bool pin_memory = false;        // page-locked batch tensors when a GPU is there (see above)
    // Data-parallel training: batch_size is the global batch, and this loader builds only part
    // `shard` of `shards` of each (rows [shard B / shards, (shard + 1) B / shards) of the global
    // batch's B), the same samples and augmentation draws one loader of the whole batch gives them.
    int shard = 0, shards = 1;
    // Called by next() with (batches delivered, batches per epoch); e.g. print_progress.
    std::function<void(int64_t, int64_t)> progress;
};

struct Batch {
    Tensor images;                  // (B, 3, S, S) F32, CLIP-normalised
    Tensor text;                    // (B, T) I64, or undefined when no tokens are available
    Tensor labels;                  // (B) I64, -1 where the dataset has no label
    std::vector<int64_t> indices;   // (B) dataset indices, for debugging and evaluation
    int64_t epoch = 0, batch = 0;   // which epoch / which batch of it
};

// A seed for (seed, epoch) or (seed, epoch, index): splitmix64 finalisers chained.
uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t index = ~uint64_t(0));

class DataLoader {
public:
    DataLoader(const Dataset& data, LoaderOptions opt);
    ~DataLoader();
    DataLoader(const DataLoader&) = delete;
    DataLoader& operator=(const DataLoader&) = delete;

    // Starts (or restarts) epoch `epoch`: computes its order and launches the workers. The first
    // batch delivered is `first_batch` (a resumed run continues mid-epoch without building the
    // batches before it; they are the same batches either way).
    void start_epoch(int64_t epoch, int64_t first_batch = 0);
    // The next batch of the current epoch; false at its end. Starts epoch 0 if none was started.
    bool next(Batch& out);
    int64_t batches_per_epoch() const;
    // The dataset order of epoch `epoch` (what start_epoch uses), N indices.
    std::vector<int64_t> epoch_order(int64_t epoch) const;

private:
    Batch build(int64_t b) const;  // batch b of the current epoch
    void stop_workers();
    void worker_loop();

    const Dataset& data_;
    const PackedDataset* packed_ = nullptr;
    LoaderOptions opt_;
    int64_t epoch_ = -1;
    std::vector<int64_t> order_;
    int64_t num_batches_ = 0;

    // Worker state: batch ids are claimed in order; results wait in ready_ until consumed.
    std::mutex mu_;
    std::condition_variable cv_work_, cv_ready_;
    std::vector<std::thread> workers_;
    int64_t next_claim_ = 0, next_consume_ = 0;
    bool stopping_ = false;
    std::map<int64_t, Batch> ready_;
    std::map<int64_t, std::exception_ptr> errors_;
};

// A progress line on stderr, "\r<what> done/total (pct%)", ending with a newline at total.
void print_progress(const std::string& what, int64_t done, int64_t total);

}  // namespace rankclip
