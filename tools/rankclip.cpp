// tools/rankclip.cpp
// defines: the `rankclip` command line. Subcommands:
//   rankclip demo                  the main job: CLIP vs RankCLIP on the synthetic data (cmd_demo.cpp)
//   rankclip train | eval | bench | plot | experiment   training and evaluation (tools/cmd_*.cpp)
//   rankclip mlp [--steps N] [--seed S] [--threads T]    fit a small MLP with the engine's autograd
//   rankclip info CHECKPOINT                             config, parameter count, tensor list
//   rankclip embed --checkpoint C [--images DIR|LIST|X.npy] [--texts T.txt|T.npy] --out PREFIX [...]
//                                                         normalised features as .npy files
//   rankclip tokenize | bpe-train | synth | pack                (data pipeline: tools/cmd_*.cpp)
// Errors are one line on stderr and a non-zero exit status.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "models/checkpoint.h"
#include "tools/cli_args.h"

using namespace rankclip;

// The data pipeline's subcommands, one file each in tools/cmd_*.cpp.
int cmd_tokenize(int argc, char** argv);
int cmd_bpe_train(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_pack(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_demo(int argc, char** argv);
int cmd_experiment(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);

static void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip <command> [options]\n"
                 "commands:\n"
                 "  demo [--steps N] [--quick] [--out DIR]\n"
                 "        the main job: train tiny with clip and with rankclip from one seed on the synthetic\n"
                 "        data, evaluate both, write DIR/report.md (default runs/demo) and print the table\n"
                 "  experiment --data synthetic|fashion-mnist [--seeds N] [--steps N] [--arms ...]\n"
                 "        clip, cyclip, rankclip and its ablations, several seeds each, evaluated alike;\n"
                 "        a mean +- std table (experiment --help)\n"
                 "  mlp [--steps N] [--seed S] [--threads T]\n"
                 "        fit a small MLP to y = x tanh(3x) + noise with SGD, printing the loss as it falls\n"
                 "  info CHECKPOINT\n"
                 "        print a CLIP checkpoint's config, parameter count and tensors (name, dtype, shape)\n"
                 "  embed --checkpoint C [--images DIR|LIST.txt|IMAGES.npy] [--texts CAPTIONS.txt|IDS.npy]\n"
                 "        --out PREFIX [--vocab MERGES.txt.gz|synthetic] [--device cpu|cuda[:N]]\n"
                 "        [--batch-size N] [--config NAME|FILE.json] [--threads T]\n"
                 "        write the L2-normalised features of the images to PREFIX.image.npy and of the\n"
                 "        texts to PREFIX.text.npy (float32 (N, embed_dim), in input order). --images is a\n"
                 "        directory (its .png/.jpg/.jpeg/.bmp/.gif/.tga files, sorted by name), a text\n"
                 "        file listing image paths (one a line, relative to the list), or a pre-processed\n"
                 "        float32 .npy batch (N, 3, S, S); files get CLIP's preprocessing (bicubic\n"
                 "        short-side resize, center crop to the model's size, normalise). --texts is a\n"
                 "        captions file (one per non-empty line) tokenized with --vocab (or\n"
                 "        $RANKCLIP_VOCAB; 'synthetic': the synthetic data's default vocabulary) at the\n"
                 "        model's context length, or a .npy of token ids, int64 or int32 (N, T),\n"
                 "        T <= context_length. --config is for checkpoints without one in their\n"
                 "        metadata (a state dict saved by PyTorch).\n"
                 "  tokenize --vocab MERGES.txt.gz [--context-length N]\n"
                 "        print the CLIP BPE token ids of each line of standard input as a JSON array\n"
                 "  bpe-train --captions FILE --vocab-size N --out MERGES.txt.gz\n"
                 "        train a BPE vocabulary (merges file, CLIP's format) on your own captions\n"
                 "  synth --out DIR --n N [--seed S] [--size PX] [--split train|heldout]\n"
                 "        write the built-in synthetic captioned images as PNGs + a captions CSV\n"
                 "  pack --data SRC --out FILE --size PX [--vocab FILE] [--context-length N]\n"
                 "        convert a dataset to the packed, memory-mapped shard format\n"
                 "  train [--model tiny] [--loss clip|rankclip|cyclip|siglip] [--data synthetic] [--steps N]\n"
                 "        [--out DIR] [--resume DIR] ...\n"
                 "        pretrain a CLIP model; progress lines, metrics.jsonl, checkpoints (train --help)\n"
                 "  plot RUN_DIR [--out FILE.svg] | plot --compare DIR1 DIR2 ... --key KEY --out FILE.svg\n"
                 "        draw metrics.jsonl as SVG charts (loss, lr, logit scale, eval metrics; plot --help)\n"
                 "  bench [--model tiny] [--loss clip] [--batch-size N] [--steps N] [--device D] ...\n"
                 "        time full training steps on random data; one JSON line (bench --help)\n"
                 "  eval --checkpoint C [--zeroshot SPEC] [--retrieval SPEC] [--probe SPEC] [--consistency SPEC]\n"
                 "        [--out RESULTS.json] ...\n"
                 "        zero-shot, retrieval, linear probe, ranking consistency; a table + JSON (eval --help)\n"
                 "  <command> --help\n"
                 "        the options of one command\n"
                 "  --help\n"
                 "        this text\n");
}

// A tiny end-to-end use of the engine: y = x tanh(3x) + noise, fitted by a 1-64-64-1 MLP with GELU
// and plain SGD with momentum. Prints the loss every 25 steps; it must fall by orders of magnitude.
static int mlp(int argc, char** argv) {
    int steps = 300;
    uint64_t seed = 0;
    ArgReader args("mlp", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (a == "--steps") steps = int(args.integer(1, std::numeric_limits<int>::max()));
        else if (a == "--seed") seed = uint64_t(args.integer(0));
        else if (a == "--threads") set_num_threads(int(args.integer(1)));
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

// The normalised features of N inputs in batches of `batch_size`: make(start, n) gives the inputs
// [start, start + n) on the CPU, encode maps them (on `device`) to (n, E). Returns (N, E) float32
// on the CPU.
template <typename Make, typename Encode>
static Tensor encode_in_batches(int64_t N, int64_t batch_size, Device device, Make make, Encode encode) {
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < N; start += batch_size) {
        int64_t n = std::min(batch_size, N - start);
        Tensor batch = make(start, n).to(device);
        parts.push_back(l2_normalize(encode(batch), -1).to(Device::cpu()));  // (n, E)
    }
    return cat(parts, 0);
}

static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static bool is_image_file_name(const std::string& name) {
    std::string ext = std::filesystem::path(name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga"})
        if (ext == e) return true;
    return false;
}

// --images that is not a .npy: a directory (its image files by extension, sorted by name, not
// recursive) or a text file of image paths, one a line, relative to the list file. Every file is
// checked to exist here, before the model loads; decoding comes batch by batch.
static std::vector<std::string> image_file_list(const std::string& arg) {
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
        for (const auto& entry : fs::directory_iterator(arg, ec))
            if (entry.is_regular_file(ec) && is_image_file_name(entry.path().filename().string()))
                files.push_back(entry.path().string());
        RC_CHECK(!ec, arg, ": cannot list the directory: ", ec.message());
        std::sort(files.begin(), files.end());
        RC_CHECK(!files.empty(), arg, ": no image files (.png .jpg .jpeg .bmp .gif .tga) in the directory");
        return files;
    }
    std::ifstream in(arg);
    RC_CHECK(in.good(), arg, ": cannot open --images (a .npy batch, a directory of images or a list of image paths)");
    fs::path base = fs::path(arg).parent_path();
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); lineno++) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;   // blank line
        fs::path p(line);
        if (p.is_relative()) p = base / p;
        RC_CHECK(fs::is_regular_file(p, ec), arg, " line ", lineno, ": no such image file '", p.string(), "'");
        files.push_back(p.string());
    }
    RC_CHECK(!files.empty(), arg, ": the image list is empty");
    return files;
}

// Decodes files[start, start + n) and applies CLIP's preprocessing at `size`: (n, 3, size, size).
// Decoding errors name the file.
static Tensor decode_image_batch(const std::vector<std::string>& files, int64_t start, int64_t n, int64_t size) {
    Tensor batch = empty({n, 3, size, size}, DType::F32);
    float* out = batch.data<float>();
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic)
    for (int64_t k = 0; k < n; k++) {
        try {
            Image img = decode_image_file(files[size_t(start + k)]);
            preprocess_clip(img, int(size), out + k * 3 * size * size);
        } catch (...) {
            errors[size_t(k)] = std::current_exception();
        }
    }
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
    return batch;
}

static int embed(int argc, char** argv) {
    std::string checkpoint, images_path, texts_path, out, config_arg, vocab = vocab_path_from_env();
    Device device = Device::cpu();
    int64_t batch_size = 64;
    ArgReader args("embed", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (a == "--checkpoint") checkpoint = args.value();
        else if (a == "--images") images_path = args.value();
        else if (a == "--texts") texts_path = args.value();
        else if (a == "--out") out = args.value();
        else if (a == "--device") device = parse_device(args.value());
        else if (a == "--batch-size") batch_size = args.integer(1);
        else if (a == "--config") config_arg = args.value();
        else if (a == "--vocab") vocab = args.value();
        else if (a == "--threads") set_num_threads(int(args.integer(1)));
        else args.unknown();
    }
    RC_CHECK(!checkpoint.empty(), "--checkpoint is required");
    RC_CHECK(!out.empty(), "--out PREFIX is required");
    RC_CHECK(!images_path.empty() || !texts_path.empty(), "nothing to embed: give --images and/or --texts");
    if (out.size() > 4 && out.compare(out.size() - 4, 4, ".npy") == 0) out.resize(out.size() - 4);
    RC_CHECK(!device.is_cuda() || has_backend(DeviceType::CUDA), "--device ", device.str(),
             ": no CUDA device is available to this build");

    // Read and check the inputs before the (slower) model load.
    Tensor images, texts;
    std::vector<std::string> image_files;   // --images as image files: decoded batch by batch
    std::vector<std::string> captions;      // --texts as a captions file: tokenized once the context is known
    Tokenizer tokenizer;
    const Tokenizer* tok = nullptr;
    if (!images_path.empty()) {
        if (ends_with(images_path, ".npy")) {
            images = read_npy(images_path);
            RC_CHECK(images.dtype() == DType::F32, images_path, ": images must be float32 (N, 3, S, S), got ",
                     npy_descr(images.dtype()), " ", shape_str(images.shape()));
            RC_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == images.size(3), images_path,
                     ": images must be (N, 3, S, S), got ", shape_str(images.shape()));
        } else {
            image_files = image_file_list(images_path);
        }
    }
    if (!texts_path.empty()) {
        if (ends_with(texts_path, ".npy")) {
            texts = read_npy(texts_path);
            RC_CHECK(texts.dtype() == DType::I64 || texts.dtype() == DType::I32, texts_path,
                     ": token ids must be int64 or int32 (N, T), got ", npy_descr(texts.dtype()), " ",
                     shape_str(texts.shape()));
            RC_CHECK(texts.dim() == 2, texts_path, ": token ids must be (N, T), got ", shape_str(texts.shape()));
        } else {
            RC_CHECK(!vocab.empty(), "--texts ", texts_path, ": captions need a vocabulary: --vocab MERGES.txt.gz ",
                     "(or RANKCLIP_VOCAB), or --vocab synthetic for the synthetic data's default one");
            captions = read_caption_lines(texts_path);
            RC_CHECK(!captions.empty(), texts_path, ": no captions (one per non-empty line)");
            if (vocab == "synthetic") {
                tok = &synthetic_default_tokenizer();
            } else {
                tokenizer = Tokenizer::from_file(vocab);
                tok = &tokenizer;
            }
        }
    }

    ClipCheckpoint ck = load_clip(checkpoint, device, clip_config_option(config_arg));
    ck.model->eval();
    const CLIPConfig& c = ck.config;
    auto encode_image = [&](const Tensor& x) { return ck.model->encode_image(x); };
    auto encode_text = [&](const Tensor& x) { return ck.model->encode_text(x); };
    if (images.defined() || !image_files.empty()) {
        Tensor features;
        if (images.defined()) {
            RC_CHECK(images.size(2) == c.image_size, images_path, ": images are ", images.size(2), "x", images.size(3),
                     " pixels, the model takes ", c.image_size, "x", c.image_size, " (", shape_str(images.shape()), ")");
            features = encode_in_batches(
                images.size(0), batch_size, device,
                [&](int64_t start, int64_t n) { return images.narrow(0, start, n).contiguous(); }, encode_image);
        } else {
            features = encode_in_batches(
                int64_t(image_files.size()), batch_size, device,
                [&](int64_t start, int64_t n) { return decode_image_batch(image_files, start, n, c.image_size); },
                encode_image);
        }
        write_npy(out + ".image.npy", features);
        std::printf("embed: %lld images -> %s.image.npy %s\n", (long long)features.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    if (tok) {
        RC_CHECK(tok->vocab_size() <= c.vocab_size, "--vocab ", vocab, ": ", tok->vocab_size(),
                 " tokens, more than the model's vocab_size ", c.vocab_size);
        std::vector<int64_t> ids;
        ids.reserve(captions.size() * size_t(c.context_length));
        for (const std::string& caption : captions) {
            std::vector<int64_t> t = tok->tokenize(caption, int(c.context_length));
            ids.insert(ids.end(), t.begin(), t.end());
        }
        texts = from_vector(ids, {int64_t(captions.size()), c.context_length}, DType::I64);   // (N, T)
    }
    if (texts.defined()) {
        RC_CHECK(texts.size(1) >= 1 && texts.size(1) <= c.context_length, texts_path, ": token ids are ",
                 shape_str(texts.shape()), ", the model's context length is ", c.context_length);
        Tensor features = encode_in_batches(
            texts.size(0), batch_size, device,
            [&](int64_t start, int64_t n) { return texts.narrow(0, start, n).contiguous(); }, encode_text);
        write_npy(out + ".text.npy", features);
        std::printf("embed: %lld texts -> %s.text.npy %s\n", (long long)texts.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    return 0;
}

int main(int argc, char** argv) {
    use_short_openmp_spin(argv);  // may restart the program once (engine/parallel.cpp)
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    std::string command = argv[1];
    try {
        if (command == "demo") return cmd_demo(argc - 2, argv + 2);
        if (command == "mlp") return mlp(argc - 2, argv + 2);
        if (command == "experiment") return cmd_experiment(argc - 2, argv + 2);
        if (command == "info") return info(argc - 2, argv + 2);
        if (command == "embed") return embed(argc - 2, argv + 2);
        if (command == "tokenize") return cmd_tokenize(argc - 2, argv + 2);
        if (command == "bpe-train") return cmd_bpe_train(argc - 2, argv + 2);
        if (command == "synth") return cmd_synth(argc - 2, argv + 2);
        if (command == "pack") return cmd_pack(argc - 2, argv + 2);
        if (command == "train") return cmd_train(argc - 2, argv + 2);
        if (command == "plot") return cmd_plot(argc - 2, argv + 2);
        if (command == "bench") return cmd_bench(argc - 2, argv + 2);
        if (command == "eval") return cmd_eval(argc - 2, argv + 2);
        std::fprintf(stderr, "rankclip: unknown command '%s' (commands: demo, train, eval, bench, plot, experiment, info, embed, tokenize, bpe-train, synth, pack, mlp; see rankclip --help)\n",
                     command.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');  // one line, always
        std::fprintf(stderr, "rankclip %s: error: %s\n", command.c_str(), message.c_str());
        return 1;
    }
}
