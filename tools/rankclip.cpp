// tools/rankclip.cpp
// defines: the `rankclip` command line. Subcommands:
//   rankclip demo [--steps N] [--seed S] [--threads T]   fit a small MLP with the engine's autograd
//   rankclip info CHECKPOINT                             config, parameter count, tensor list
//   rankclip embed --checkpoint C [--images X.npy] [--texts T.npy] --out PREFIX [...]
//                                                         normalised features as .npy files
//   rankclip tokenize | bpe-train | synth | pack                (data pipeline: tools/cmd_*.cpp)
// (train and eval arrive with the training layer). Errors are one line on stderr and a non-zero
// exit status.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "data/npy.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/checkpoint.h"

using namespace rankclip;

// The data pipeline's subcommands, one file each in tools/cmd_*.cpp.
int cmd_tokenize(int argc, char** argv);
int cmd_bpe_train(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_pack(int argc, char** argv);

static void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip <command> [options]\n"
                 "commands:\n"
                 "  demo [--steps N] [--seed S] [--threads T]\n"
                 "        fit a small MLP to y = x tanh(3x) + noise with SGD, printing the loss as it falls\n"
                 "  info CHECKPOINT\n"
                 "        print a CLIP checkpoint's config, parameter count and tensors (name, dtype, shape)\n"
                 "  embed --checkpoint C [--images IMAGES.npy] [--texts TEXTS.npy] --out PREFIX\n"
                 "        [--device cpu|cuda[:N]] [--batch-size N] [--config NAME|FILE.json] [--threads T]\n"
                 "        write the L2-normalised features of the images to PREFIX.image.npy and of the\n"
                 "        texts to PREFIX.text.npy (float32 (N, embed_dim)). Until the data pipeline lands,\n"
                 "        IMAGES.npy is a pre-processed float32 batch (N, 3, S, S) and TEXTS.npy holds\n"
                 "        token ids, int64 or int32 (N, T), T <= context_length. --config is for\n"
                 "        checkpoints without one in their metadata (a state dict saved by PyTorch).\n"
                 "  tokenize --vocab MERGES.txt.gz [--context-length N]\n"
                 "        print the CLIP BPE token ids of each line of standard input as a JSON array\n"
                 "  bpe-train --captions FILE --vocab-size N --out MERGES.txt.gz\n"
                 "        train a BPE vocabulary (merges file, CLIP's format) on your own captions\n"
                 "  synth --out DIR --n N [--seed S] [--size PX] [--split train|heldout]\n"
                 "        write the built-in synthetic captioned images as PNGs + a captions CSV\n"
                 "  pack --data SRC --out FILE --size PX [--vocab FILE] [--context-length N]\n"
                 "        convert a dataset to the packed, memory-mapped shard format\n"
                 "  <command> --help\n"
                 "        the options of one command\n"
                 "  --help\n"
                 "        this text\n");
}

// A tiny end-to-end use of the engine: y = x tanh(3x) + noise, fitted by a 1-64-64-1 MLP with GELU
// and plain SGD with momentum. Prints the loss every 25 steps; it must fall by orders of magnitude.
static int demo(int argc, char** argv) {
    int steps = 300;
    uint64_t seed = 0;
    for (int i = 0; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw Error("demo: " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--steps") steps = std::stoi(value());
        else if (a == "--seed") seed = std::stoull(value());
        else if (a == "--threads") set_num_threads(std::stoi(value()));
        else throw Error("demo: unknown option '" + a + "'");
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
    std::printf("demo: fitting y = x tanh(3x) + noise with a 1-%lld-%lld-1 GELU MLP, %d steps of SGD\n",
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
    std::printf("demo: loss %.6f -> %.6f (%.0fx lower)\n", first, last, first / last);
    return last < first ? 0 : 1;
}

// ---- info ----

static int info(int argc, char** argv) {
    RC_CHECK(argc == 1 && argv[0][0] != '-', "usage: rankclip info CHECKPOINT");
    const std::string path = argv[0];
    ClipCheckpointInfo ck = read_clip_checkpoint_info(path);
    std::printf("checkpoint: %s (%llu bytes)\n", path.c_str(), (unsigned long long)ck.file_bytes);
    auto meta = [&](const char* key) {
        auto it = ck.metadata.find(key);
        return it == ck.metadata.end() ? std::string("-") : it->second;
    };
    std::printf("format: %s\ndtype: %s\n", meta("format").c_str(), meta("dtype").c_str());
    if (ck.config) {
        std::string preset;
        for (const std::string& name : clip_config_names())
            if (clip_config(name) == *ck.config) preset = " (preset " + name + ")";
        std::printf("config%s:\n", preset.c_str());
        Json config = ck.config->to_json();
        for (const auto& [key, value] : config.as_object())
            std::printf("  %-15s %s\n", key.c_str(), value.dump().c_str());
    } else {
        std::printf("config: none in the file (a state dict saved by PyTorch?)\n");
    }
    int64_t parameter_tensors = 0;
    for (const auto& t : ck.tensors) parameter_tensors += t.extra ? 0 : 1;
    std::printf("parameters: %lld in %lld tensors\n", (long long)ck.num_parameters, (long long)parameter_tensors);
    for (const auto& [key, value] : ck.metadata) {
        if (key == "format" || key == "dtype" || key == "config" || key == "extra_tensors") continue;
        std::string v = value.size() > 100 ? value.substr(0, 97) + "..." : value;
        std::printf("metadata %s: %s\n", key.c_str(), v.c_str());
    }
    size_t width = 0;
    for (const auto& t : ck.tensors) width = std::max(width, t.name.size());
    std::printf("tensors:\n");
    for (const auto& t : ck.tensors)
        std::printf("  %-*s  %-4s  %s%s\n", int(width), t.name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str(),
                    t.extra ? "  (extra)" : "");
    return 0;
}

// ---- embed ----

static Device parse_device(const std::string& s) {
    if (s == "cpu") return Device::cpu();
    if (s == "cuda") return Device::cuda(0);
    if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.find_first_not_of("0123456789", 5) == std::string::npos)
        return Device::cuda(std::stoi(s.substr(5)));
    throw Error("--device must be cpu, cuda or cuda:N, got '" + s + "'");
}

static int64_t parse_positive(const std::string& option, const std::string& s) {
    size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    RC_CHECK(used == s.size() && v > 0, option, " needs a positive integer, got '", s, "'");
    return v;
}

// The features of `inputs` (N, ...) in batches of `batch_size`: (N, E) float32 on the CPU.
template <typename Encode>
static Tensor encode_in_batches(const Tensor& inputs, int64_t batch_size, Device device, Encode encode) {
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < inputs.size(0); start += batch_size) {
        int64_t n = std::min(batch_size, inputs.size(0) - start);
        Tensor batch = inputs.narrow(0, start, n).contiguous().to(device);
        parts.push_back(l2_normalize(encode(batch), -1).to(Device::cpu()));  // (n, E)
    }
    return cat(parts, 0);
}

static int embed(int argc, char** argv) {
    std::string checkpoint, images_path, texts_path, out, config_arg;
    Device device = Device::cpu();
    int64_t batch_size = 64;
    for (int i = 0; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            RC_CHECK(i + 1 < argc, a, " needs a value");
            return argv[++i];
        };
        if (a == "--checkpoint") checkpoint = value();
        else if (a == "--images") images_path = value();
        else if (a == "--texts") texts_path = value();
        else if (a == "--out") out = value();
        else if (a == "--device") device = parse_device(value());
        else if (a == "--batch-size") batch_size = parse_positive(a, value());
        else if (a == "--config") config_arg = value();
        else if (a == "--threads") set_num_threads(int(parse_positive(a, value())));
        else throw Error("unknown option '" + a + "' (see rankclip --help)");
    }
    RC_CHECK(!checkpoint.empty(), "--checkpoint is required");
    RC_CHECK(!out.empty(), "--out PREFIX is required");
    RC_CHECK(!images_path.empty() || !texts_path.empty(), "nothing to embed: give --images and/or --texts");
    if (out.size() > 4 && out.compare(out.size() - 4, 4, ".npy") == 0) out.resize(out.size() - 4);
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "--device ", device.str(),
             ": no CUDA device is available to this build");

    // Read and check the inputs before the (slower) model load.
    Tensor images, texts;
    if (!images_path.empty()) {
        images = read_npy(images_path);
        RC_CHECK(images.dtype() == DType::F32, images_path, ": images must be float32 (N, 3, S, S), got ",
                 npy_descr(images.dtype()), " ", shape_str(images.shape()));
        RC_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == images.size(3), images_path,
                 ": images must be (N, 3, S, S), got ", shape_str(images.shape()));
    }
    if (!texts_path.empty()) {
        texts = read_npy(texts_path);
        RC_CHECK(texts.dtype() == DType::I64 || texts.dtype() == DType::I32, texts_path,
                 ": token ids must be int64 or int32 (N, T), got ", npy_descr(texts.dtype()), " ",
                 shape_str(texts.shape()));
        RC_CHECK(texts.dim() == 2, texts_path, ": token ids must be (N, T), got ", shape_str(texts.shape()));
    }

    std::optional<CLIPConfig> config;
    if (!config_arg.empty()) {
        bool preset = false;
        for (const std::string& name : clip_config_names()) preset = preset || name == config_arg;
        config = preset ? clip_config(config_arg) : CLIPConfig::from_json_file(config_arg);
    }
    ClipCheckpoint ck = load_clip(checkpoint, device, config);
    ck.model->eval();
    const CLIPConfig& c = ck.config;
    if (images.defined()) {
        RC_CHECK(images.size(2) == c.image_size, images_path, ": images are ", images.size(2), "x", images.size(3),
                 " pixels, the model takes ", c.image_size, "x", c.image_size, " (", shape_str(images.shape()), ")");
        Tensor features = encode_in_batches(images, batch_size, device,
                                            [&](const Tensor& x) { return ck.model->encode_image(x); });
        write_npy(out + ".image.npy", features);
        std::printf("embed: %lld images -> %s.image.npy %s\n", (long long)images.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    if (texts.defined()) {
        RC_CHECK(texts.size(1) >= 1 && texts.size(1) <= c.context_length, texts_path, ": token ids are ",
                 shape_str(texts.shape()), ", the model's context length is ", c.context_length);
        Tensor features = encode_in_batches(texts, batch_size, device,
                                            [&](const Tensor& x) { return ck.model->encode_text(x); });
        write_npy(out + ".text.npy", features);
        std::printf("embed: %lld texts -> %s.text.npy %s\n", (long long)texts.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    std::string command = argv[1];
    try {
        if (command == "demo") return demo(argc - 2, argv + 2);
        if (command == "info") return info(argc - 2, argv + 2);
        if (command == "embed") return embed(argc - 2, argv + 2);
        if (command == "tokenize") return cmd_tokenize(argc - 2, argv + 2);
        if (command == "bpe-train") return cmd_bpe_train(argc - 2, argv + 2);
        if (command == "synth") return cmd_synth(argc - 2, argv + 2);
        if (command == "pack") return cmd_pack(argc - 2, argv + 2);
        std::fprintf(stderr, "rankclip: unknown command '%s' (commands: demo, info, embed, tokenize, bpe-train, synth, pack; see rankclip --help)\n",
                     command.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');  // one line, always
        std::fprintf(stderr, "rankclip %s: error: %s\n", command.c_str(), message.c_str());
        return 1;
    }
}
