// data/loader.cpp
// defines: DataLoader (epoch order, per-sample seeded augmentation, worker threads building whole
// batches in plain or pinned memory, a bounded in-order prefetch queue), mix_seed and
// print_progress.
#include "data/loader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "data/packed.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/error.h"
#include "engine/random.h"

namespace rankclip {

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t index) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ epoch);
    if (index != ~uint64_t(0)) h = splitmix64(h ^ (index * 0xD6E8FEB86659FD93ull));
    return h ^ (h >> 32);  // Generator seeds from the low 32 bits: fold the high half in
}

void print_progress(const std::string& what, int64_t done, int64_t total) {
    double pct = total > 0 ? 100.0 * double(done) / double(total) : 100.0;
    std::fprintf(stderr, "\r%s %lld/%lld (%.0f%%)%s", what.c_str(), (long long)done, (long long)total,
                 pct, done >= total ? "\n" : "");
    std::fflush(stderr);
}

DataLoader::DataLoader(const Dataset& data, LoaderOptions opt) : data_(data), opt_(std::move(opt)) {
    RC_CHECK(opt_.batch_size > 0, "DataLoader: batch_size must be positive, got ", opt_.batch_size);
    RC_CHECK(opt_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", opt_.num_workers);
    RC_CHECK(opt_.image_size > 0, "DataLoader: image_size must be positive, got ", opt_.image_size);
    RC_CHECK(data_.size() > 0, "DataLoader: empty dataset (", data_.describe(), ")");
    RC_CHECK(opt_.shards >= 1 && opt_.shard >= 0 && opt_.shard < opt_.shards, "DataLoader: shard ", opt_.shard,
             " of ", opt_.shards, " does not exist");
    if (opt_.prefetch < 1) opt_.prefetch = 1;
    packed_ = dynamic_cast<const PackedDataset*>(&data_);
    // The synthetic data has a default vocabulary: its captions are tokenized even without one.
    if (!opt_.tokenizer && dynamic_cast<const SyntheticDataset*>(&data_))
        opt_.tokenizer = &synthetic_default_tokenizer();
    int64_t n = int64_t(data_.size());
    num_batches_ = opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
    RC_CHECK(num_batches_ > 0, "DataLoader: ", n, " samples make no full batch of ", opt_.batch_size,
             " with drop_last");
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const { return num_batches_; }

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
    int64_t n = int64_t(data_.size());
    std::vector<int64_t> order(n);
    if (opt_.shuffle) {
        Generator gen(mix_seed(opt_.seed, uint64_t(epoch)));
        gen.randperm(order.data(), n);
    } else {
        for (int64_t i = 0; i < n; i++) order[i] = i;
    }
    return order;
}

void DataLoader::stop_workers() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stopping_ = false;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
    RC_CHECK(first_batch >= 0, "DataLoader: negative first batch ", first_batch);
    stop_workers();
    epoch_ = epoch;
    order_ = epoch_order(epoch);
    next_claim_ = next_consume_ = std::min(first_batch, num_batches_);
    ready_.clear();
    errors_.clear();
    for (int w = 0; w < opt_.num_workers; w++) workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::worker_loop() {
    while (true) {
        int64_t b;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_work_.wait(lock, [&] {
                return stopping_ ||
                       (next_claim_ < num_batches_ && next_claim_ < next_consume_ + opt_.prefetch);
            });
            if (stopping_) return;
            b = next_claim_++;
        }
        Batch batch;
        std::exception_ptr err;
        try {
            batch = build(b);
        } catch (...) {
            err = std::current_exception();
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (err) errors_[b] = err;
            else ready_[b] = std::move(batch);
        }
        cv_ready_.notify_all();
    }
}

bool DataLoader::next(Batch& out) {
    if (epoch_ < 0) start_epoch(0);
    if (next_consume_ >= num_batches_) return false;
    int64_t b = next_consume_;
    if (opt_.num_workers == 0) {
        next_consume_++;   // a batch that throws is passed over, as with workers
        out = build(b);
    } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_ready_.wait(lock, [&] { return ready_.count(b) || errors_.count(b); });
        next_consume_++;
        auto e = errors_.find(b);
        if (e != errors_.end()) {
            std::exception_ptr err = e->second;
            errors_.erase(e);
            lock.unlock();
            cv_work_.notify_all();
            std::rethrow_exception(err);
        }
        out = std::move(ready_[b]);
        ready_.erase(b);
        lock.unlock();
        cv_work_.notify_all();
    }
    if (opt_.progress) opt_.progress(next_consume_, num_batches_);
    return true;
}

Batch DataLoader::build(int64_t b) const {
    int64_t n = int64_t(order_.size());
    const int64_t global_start = b * opt_.batch_size;
    const int64_t global_B = std::min(opt_.batch_size, n - global_start);
    // this loader's part of the global batch (all of it when not sharded)
    int64_t start = global_start + global_B * opt_.shard / opt_.shards;
    int64_t B = global_start + global_B * (opt_.shard + 1) / opt_.shards - start;
    int S = opt_.image_size;
    Batch batch;
    batch.epoch = epoch_;
    batch.batch = b;
    batch.indices.assign(order_.begin() + start, order_.begin() + start + B);

    // Text: stored packed tokens when they fit the request, else the tokenizer, else none.
    int T = 0;
    bool use_packed_tokens = false;
    if (packed_ && packed_->context_length() > 0 &&
        (!opt_.tokenizer || packed_->context_length() == opt_.context_length)) {
        use_packed_tokens = true;
        T = packed_->context_length();
    } else if (opt_.tokenizer) {
        T = opt_.context_length;
    }
    // pin_memory: page-locked when a GPU is there, so the trainer's copy to it is a direct DMA.
    auto alloc = [&](const Shape& shape, DType dtype) {
        return opt_.pin_memory ? empty_pinned(shape, dtype) : empty(shape, dtype);
    };
    batch.images = alloc({B, 3, S, S}, DType::F32);
    batch.labels = alloc({B}, DType::I64);
    if (T > 0) batch.text = alloc({B, T}, DType::I64);
    float* img = batch.images.data<float>();
    int64_t* lab = batch.labels.data<int64_t>();
    int64_t* txt = T > 0 ? batch.text.data<int64_t>() : nullptr;
    size_t plane = size_t(3) * S * S;

    for (int64_t k = 0; k < B; k++) {
        size_t i = size_t(batch.indices[k]);
        Generator gen(mix_seed(opt_.seed, uint64_t(epoch_), i));
        if (packed_ && packed_->image_size() == S) {
            // Fast path: pixels are already S x S; no decode, no resize unless augmenting.
            Image im;
            im.width = im.height = S;
            const uint8_t* p = packed_->pixels(i);
            im.rgb.assign(p, p + size_t(S) * S * 3);
            if (opt_.augment) augment_clip(im, S, opt_.augment_options, gen, img + k * plane);
            else normalize_clip(im, img + k * plane);
            lab[k] = packed_->label(i);
            if (use_packed_tokens) packed_->tokens(i, txt + k * T);
            else if (T > 0) {
                auto ids = opt_.tokenizer->tokenize(packed_->caption(i), T);
                std::memcpy(txt + k * T, ids.data(), size_t(T) * 8);
            }
            continue;
        }
        Sample s = data_.get(i);
        if (opt_.augment) augment_clip(s.image, S, opt_.augment_options, gen, img + k * plane);
        else preprocess_clip(s.image, S, img + k * plane);
        lab[k] = s.label;
        if (use_packed_tokens) {
            packed_->tokens(i, txt + k * T);
        } else if (T > 0) {
            auto ids = opt_.tokenizer->tokenize(s.caption, T);
            RC_CHECK(int64_t(ids.size()) == T, "DataLoader: tokenizer returned ", ids.size(),
                     " ids for context length ", T);
            std::memcpy(txt + k * T, ids.data(), size_t(T) * 8);
        }
    }
    return batch;
}

}  // namespace rankclip
