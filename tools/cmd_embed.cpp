// tools/cmd_embed.cpp
// defines: cmd_embed, the `rankclip embed` subcommand: the L2-normalised features of images and
// texts through a checkpoint's towers, written as float32 .npy files. Image files are embedded by
// embed_images (eval/eval.h: CLIP's preprocessing, batch by batch) over an ImageFileList,
// captions by embed_texts; pre-processed .npy batches and token-id .npy files go straight to the
// towers in batches.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/strings.h"
#include "models/checkpoint.h"
#include "tools/cli_args.h"
#include "eval/eval.h"

using namespace rankclip;

static void embed_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: rankclip embed --checkpoint C [--images DIR|LIST.txt|IMAGES.npy] [--texts CAPTIONS.txt|IDS.npy]\n"
                 "                      --out PREFIX [--vocab MERGES.txt.gz|synthetic] [--device cpu|cuda[:N]]\n"
                 "                      [--batch-size N] [--config NAME|FILE.json] [--threads T]\n"
                 "  write the L2-normalised features of the images to PREFIX.image.npy and of the\n"
                 "  texts to PREFIX.text.npy (float32 (N, embed_dim), in input order). --images is a\n"
                 "  directory (its .png/.jpg/.jpeg/.bmp/.gif/.tga files, sorted by name), a text\n"
                 "  file listing image paths (one a line, relative to the list), or a pre-processed\n"
                 "  float32 .npy batch (N, 3, S, S); files get CLIP's preprocessing (bicubic\n"
                 "  short-side resize, center crop to the model's size, normalise). --texts is a\n"
                 "  captions file (one per non-empty line) tokenized with --vocab (or\n"
                 "  $RANKCLIP_VOCAB; 'synthetic': the synthetic data's default vocabulary) at the\n"
                 "  model's context length, or a .npy of token ids, int64 or int32 (N, T),\n"
                 "  T <= context_length. --config is for checkpoints without one in their\n"
                 "  metadata (a state dict saved by PyTorch). Default batch size 64.\n");
}

// The normalised features of the N rows of a CPU tensor (pre-processed images or token ids) in
// batches of `batch_size`, each encoded on `device`: (N, E) float32 on the CPU.
template <typename Encode>
static Tensor encode_rows_in_batches(const Tensor& rows, int64_t batch_size, Device device, Encode encode) {
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < rows.size(0); start += batch_size) {
        const int64_t n = std::min(batch_size, rows.size(0) - start);
        Tensor batch = rows.narrow(0, start, n).contiguous().to(device);
        parts.push_back(l2_normalize(encode(batch), -1).to(Device::cpu()));  // (n, E)
    }
    return cat(parts, 0);
}

static bool is_image_file_name(const std::string& name) {
    std::string ext = std::filesystem::path(name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga"})
        if (ext == e) return true;
    return false;
}

// A non-finite value (NaN, inf) in `t` is an Error naming `what`, the count and the first index:
// features of a NaN image are NaN, and writing them would pass the problem on silently.
static void require_finite(const Tensor& t, const std::string& what) {
    const std::vector<double> v = t.to(DType::F64).to_vector<double>();
    int64_t bad = 0, first = -1;
    for (size_t i = 0; i < v.size(); i++)
        if (!std::isfinite(v[i])) {
            if (first < 0) first = int64_t(i);
            bad++;
        }
    RC_CHECK(bad == 0, what, ": ", bad, " of ", v.size(), " values are not finite (the first at flat index ", first,
             "); nothing written");
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

// Image files as a Dataset for embed_images: sample i is files[i] decoded (an error names the
// file and stops the command), with no caption or label.
class ImageFileList : public Dataset {
public:
    ImageFileList(std::string source, std::vector<std::string> files)
        : source_(std::move(source)), files_(std::move(files)) {}
    size_t size() const override { return files_.size(); }
    Sample get(size_t index) const override {
        Sample s;
        s.image = decode_image_file(files_.at(index));
        return s;
    }
    std::string describe() const override { return str_cat("image files: ", source_, ", ", files_.size(), " images"); }

private:
    std::string source_;
    std::vector<std::string> files_;
};

int cmd_embed(int argc, char** argv) {
    std::string checkpoint, images_path, texts_path, out, config_arg, vocab = vocab_path_from_env();
    Device device = Device::cpu();
    int64_t batch_size = 64;
    ArgReader args("embed", argc, argv);
    std::string a;
    while (args.next(a)) {
        if (a == "--help" || a == "-h") {
            embed_usage(stdout);
            return 0;
        } else if (a == "--checkpoint") checkpoint = args.value();
        else if (a == "--images") images_path = args.value();
        else if (a == "--texts") texts_path = args.value();
        else if (a == "--out") out = args.value();
        else if (a == "--device") device = parse_device(args.value());
        else if (a == "--batch-size") batch_size = args.integer(1);
        else if (a == "--config") config_arg = args.value();
        else if (a == "--vocab") vocab = args.value();
        else if (a == "--threads") set_num_threads(args.int_value(1));
        else args.unknown();
    }
    RC_CHECK(!checkpoint.empty(), "--checkpoint is required");
    RC_CHECK(!out.empty(), "--out PREFIX is required");
    RC_CHECK(!images_path.empty() || !texts_path.empty(), "nothing to embed: give --images and/or --texts");
    if (ends_with(out, ".npy")) out.resize(out.size() - 4);
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
            RC_CHECK(images.size(0) > 0, images_path, ": no images (shape ", shape_str(images.shape()), ")");
            require_finite(images, images_path + ": images");
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
            RC_CHECK(texts.size(0) > 0, texts_path, ": no token rows (shape ", shape_str(texts.shape()), ")");
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
        Tensor features;   // (N, E)
        if (images.defined()) {
            RC_CHECK(images.size(2) == c.image_size, images_path, ": images are ", images.size(2), "x", images.size(3),
                     " pixels, the model takes ", c.image_size, "x", c.image_size, " (", shape_str(images.shape()), ")");
            features = encode_rows_in_batches(images, batch_size, device, encode_image);
        } else {
            std::vector<int64_t> all(image_files.size());
            std::iota(all.begin(), all.end(), int64_t(0));
            ImageFileList files(images_path, std::move(image_files));
            features = embed_images(*ck.model, files, all, batch_size).features;
        }
        require_finite(features, "embed: the image features");
        write_npy(out + ".image.npy", features);
        std::printf("embed: %lld images -> %s.image.npy %s\n", (long long)features.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    if (tok || texts.defined()) {
        Tensor features;   // (N, E)
        if (tok) {
            RC_CHECK(tok->vocab_size() <= c.vocab_size, "--vocab ", vocab, ": ", tok->vocab_size(),
                     " tokens, more than the model's vocab_size ", c.vocab_size);
            features = embed_texts(*ck.model, *tok, captions, batch_size);
        } else {
            RC_CHECK(texts.size(1) >= 1 && texts.size(1) <= c.context_length, texts_path, ": token ids are ",
                     shape_str(texts.shape()), ", the model's context length is ", c.context_length);
            features = encode_rows_in_batches(texts, batch_size, device, encode_text);
        }
        require_finite(features, "embed: the text features");
        write_npy(out + ".text.npy", features);
        std::printf("embed: %lld texts -> %s.text.npy %s\n", (long long)features.size(0), out.c_str(),
                    shape_str(features.shape()).c_str());
    }
    return 0;
}
