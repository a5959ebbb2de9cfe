// eval/eval.cpp
// defines: EvalConfig's defaults and option parsing, the Evaluator (planning: specs -> opened
// datasets and selections; running: the per-run feature caches and the jobs in order), evaluate,
// and the table / JSON output. The evaluations themselves are in eval/zero_shot.cpp,
// eval/retrieval_eval.cpp and eval/eval_probe.cpp.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "data/fashion_mnist.h"
#include "engine/ops.h"
#include "engine/parse.h"
#include "engine/strings.h"
#include "eval/eval_impl.h"

namespace rankclip {

// ---- configuration ----

EvalConfig default_eval_config() {
    EvalConfig cfg;
    cfg.zero_shot = {"synthetic", "synthetic:heldout"};
    cfg.retrieval = {"synthetic"};
    cfg.probe = {"synthetic"};
    cfg.consistency = {"synthetic"};
    return cfg;
}

static void append_specs(std::vector<std::string>& list, const std::string& option, const std::string& value) {
    if (value == "none") {
        list.clear();
        return;
    }
    size_t start = 0;
    while (true) {
        const size_t comma = value.find(',', start);
        std::string part = value.substr(start, comma == std::string::npos ? comma : comma - start);
        RC_CHECK(!part.empty(), "--", option, ": empty dataset name in '", value, "'");
        list.push_back(part);
        if (comma == std::string::npos) return;
        start = comma + 1;
    }
}

bool set_eval_option(EvalConfig& cfg, const std::string& name, const std::string& value) {
    const std::string flag = "--" + name;   // what errors call it (engine/parse.h)
    if (name == "zeroshot") append_specs(cfg.zero_shot, name, value);
    else if (name == "retrieval") append_specs(cfg.retrieval, name, value);
    else if (name == "probe") append_specs(cfg.probe, name, value);
    else if (name == "consistency") append_specs(cfg.consistency, name, value);
    else if (name == "templates") cfg.templates_file = value;
    else if (name == "batch-size") cfg.batch_size = parse_int_option(flag, value, 1);
    else if (name == "limit") cfg.limit = parse_int_option(flag, value, 0);
    else if (name == "captions-per-image") cfg.captions_per_image = int(parse_int_option(flag, value, 1));
    else if (name == "synthetic-n") cfg.synthetic_n = parse_int_option(flag, value, 3);
    else if (name == "probe-train-n") cfg.synthetic_probe_train_n = parse_int_option(flag, value, 2);
    else if (name == "probe-steps") cfg.probe_options.steps = parse_int_option(flag, value, 1);
    else if (name == "probe-lr") cfg.probe_options.lr = parse_positive_real_option(flag, value);
    else if (name == "seed") cfg.probe_options.seed = uint64_t(parse_int_option(flag, value, 0));
    else if (name == "image-column") cfg.open_options.image_column = value;
    else if (name == "caption-column") cfg.open_options.caption_column = value;
    else if (name == "separator") cfg.open_options.separator = value;
    else return false;
    return true;
}

const char* eval_options_help() {
    return "  --zeroshot SPEC[,SPEC]     zero-shot classification: synthetic[:val|heldout|train][:N] (its shape,\n"
           "                             colour, count and relation tasks), fashion-mnist[:test|train], or a\n"
           "                             class-folder DIR\n"
           "  --templates FILE           prompt templates, one a line with {} for the class name (default: the\n"
           "                             synthetic tasks' own, Fashion-MNIST's, or a generic photo set)\n"
           "  --retrieval SPEC[,SPEC]    image<->text retrieval: synthetic (--captions-per-image K captions\n"
           "                             each, default 5), a CSV (rows with the same image are one image), or\n"
           "                             shards (.tar, .rcpack; packed rows with identical pixels are one image)\n"
           "  --probe SPEC[,SPEC]        linear probe: synthetic (train -> val), fashion-mnist (train -> test),\n"
           "                             DIR (DIR/train -> DIR/test, or every 5th image as test)\n"
           "  --consistency SPEC[,SPEC]  ranking consistency (Kendall tau-b, Spearman) on held-out pairs\n"
           "                             (synthetic val, a CSV, shards)\n"
           "                             Each list flag appends; 'none' clears it.\n"
           "  --limit N                  at most N images of each dataset, spread evenly (default: all; the\n"
           "                             synthetic splits have --synthetic-n 1000 and --probe-train-n 5000)\n"
           "  --batch-size N             images or texts per forward pass (default 64)\n"
           "  --probe-steps N --probe-lr X --seed S   the probe's AdamW steps (300), peak lr (0.02) and the\n"
           "                             seed of its validation split (0)\n"
           "  --image-column C --caption-column C --separator S   CSV columns (filepath, title) and separator\n";
}

// ---- metric names ----

std::string metric_name_part(const std::string& s) {
    std::string out = s;
    for (char& c : out)
        if (c == ' ' || c == '\t' || c == '/') c = '_';
    return out;
}

void add_metric(EvalMetrics& out, const std::string& prefix, const std::string& name, double value) {
    out.emplace_back(prefix + "/" + name, value);
}

// A path's name for metric names: the directory's or file's base name without extension,
// characters other than letters, digits, '.', '_' and '-' replaced by '_'.
std::string path_display_name(const std::string& spec) {
    std::string s = spec;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    std::filesystem::path p(s);
    std::string name = std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
    if (name.empty()) name = "data";
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
    return name;
}

// ---- planning ----

Evaluator::Impl::Impl(const EvalConfig& config, const Tokenizer& tokenizer) : cfg(config), tok(tokenizer) {
    RC_CHECK(cfg.batch_size >= 1, "eval: batch size must be >= 1, got ", cfg.batch_size);
    RC_CHECK(cfg.limit >= 0, "eval: --limit must be >= 0, got ", cfg.limit);
    RC_CHECK(cfg.captions_per_image >= 1, "eval: captions per image must be >= 1, got ", cfg.captions_per_image);
    RC_CHECK(cfg.synthetic_n >= 3 && cfg.synthetic_probe_train_n >= 2, "eval: synthetic split sizes too small (",
             cfg.synthetic_n, ", ", cfg.synthetic_probe_train_n, ")");
    if (!cfg.templates_file.empty()) templates = read_templates_file(cfg.templates_file);
    for (const std::string& spec : cfg.zero_shot) {
        Job job{Job::ZeroShot, "", {}, {}};
        Source* source = open_source(spec, Role::Eval);
        RC_CHECK(source->synthetic || !source->data->class_names().empty(), "--zeroshot ", spec,
                 ": zero-shot classification needs labelled data with class names (", source->data->describe(), ")");
        job.name = unique_name(job.kind, source->name);
        job.data = images_of(source, spread_indices(int64_t(source->data->size()), 0));
        jobs.push_back(std::move(job));
    }
    for (const std::string& spec : cfg.retrieval) {
        Job job{Job::Retrieval, "", {}, {}};
        Source* source = open_source(spec, Role::Eval);
        job.name = unique_name(job.kind, source->name);
        job.data = paired_selection(source, cfg.captions_per_image);
        jobs.push_back(std::move(job));
    }
    for (const std::string& spec : cfg.probe) plan_probe(spec);
    for (const std::string& spec : cfg.consistency) {
        Job job{Job::Consistency, "", {}, {}};
        Source* source = open_source(spec, Role::Eval);
        job.name = unique_name(job.kind, source->name);
        job.data = paired_selection(source, 1);
        RC_CHECK(job.data.images.size() >= 3, "--consistency ", spec, ": needs at least 3 pairs, got ",
                 job.data.images.size());
        jobs.push_back(std::move(job));
    }
}

Evaluator::Impl::Source* Evaluator::Impl::open_source(const std::string& spec, Role role) {
    RC_CHECK(!spec.empty(), "eval: empty dataset name");
    const std::vector<std::string> parts = split(spec, ':');
    std::string key, name;
    if (parts[0] == "synthetic") {
        RC_CHECK(parts.size() <= 3, "eval: '", spec, "': expected synthetic[:train|val|heldout][:N]");
        SyntheticSplit split = role == Role::ProbeTrain ? SyntheticSplit::Train : SyntheticSplit::Val;
        int64_t n = role == Role::ProbeTrain ? cfg.synthetic_probe_train_n : cfg.synthetic_n;
        if (parts.size() > 1) split = parse_synthetic_split(parts[1]);
        if (parts.size() > 2) {
            size_t used = 0;
            try {
                n = std::stoll(parts[2], &used);
            } catch (const std::exception&) {
                used = 0;
            }
            RC_CHECK(used == parts[2].size() && n >= 3, "eval: '", spec, "': bad sample count '", parts[2],
                     "' (expected synthetic[:train|val|heldout][:N], N >= 3)");
        }
        key = str_cat("synthetic:", synthetic_split_name(split), ":", n);
        name = split == SyntheticSplit::Val ? std::string("synthetic")
                                            : str_cat("synthetic-", synthetic_split_name(split));
        auto it = sources.find(key);
        if (it != sources.end()) return it->second.get();
        SyntheticConfig config;
        config.n = size_t(n);
        auto data = std::make_shared<SyntheticDataset>(config, split, cfg.synthetic_seed);
        auto source = std::make_unique<Source>();
        source->key = key;
        source->name = name;
        source->synthetic = data.get();
        source->data = data;
        return (sources[key] = std::move(source)).get();
    }
    if (parts[0] == "fashion-mnist") {
        std::string split = role == Role::ProbeTrain ? "train" : "test";
        bool captions = false;
        for (size_t k = 1; k < parts.size(); k++) {
            if (parts[k] == "train" || parts[k] == "test") split = parts[k];
            else if (parts[k] == "captions") captions = true;
            else throw Error(str_cat("eval: '", spec, "': expected fashion-mnist[:train|test][:captions]"));
        }
        key = "fashion-mnist:" + split + (captions ? ":captions" : "");
        name = role == Role::Eval && split == "train" ? "fashion-mnist-train" : "fashion-mnist";
        auto it = sources.find(key);
        if (it != sources.end()) return it->second.get();
        auto source = std::make_unique<Source>();
        source->key = key;
        source->name = name;
        source->data = std::shared_ptr<Dataset>(open_dataset(key, cfg.open_options));
        return (sources[key] = std::move(source)).get();
    }
    return open_path(spec);
}

Evaluator::Impl::Source* Evaluator::Impl::open_path(const std::string& path) {
    auto it = sources.find(path);
    if (it != sources.end()) return it->second.get();
    auto source = std::make_unique<Source>();
    source->key = path;
    source->name = path_display_name(path);
    source->data = std::shared_ptr<Dataset>(open_dataset(path, cfg.open_options));
    RC_CHECK(source->data->size() > 0, "eval: '", path, "' has no samples (", source->data->describe(), ")");
    return (sources[path] = std::move(source)).get();
}

std::string Evaluator::Impl::unique_name(Job::Kind kind, const std::string& base) {
    std::vector<std::string>& used = used_names[int(kind)];
    std::string name = base;
    for (int k = 2; std::find(used.begin(), used.end(), name) != used.end(); k++) name = str_cat(base, "-", k);
    used.push_back(name);
    return name;
}

Evaluator::Impl::Selection Evaluator::Impl::images_of(Source* source, std::vector<int64_t> candidates) const {
    Selection s;
    s.source = source;
    for (int64_t k : spread_indices(int64_t(candidates.size()), cfg.limit)) s.images.push_back(candidates[size_t(k)]);
    RC_CHECK(!s.images.empty(), "eval: no images selected from ", source->data->describe());
    return s;
}

// ---- running ----

const EmbeddedImages& Evaluator::Impl::images(const Selection& s) {
    for (const auto& cached : image_cache)
        if (cached->source == s.source && cached->indices == s.images) return cached->embedded;
    auto cached = std::make_unique<CachedImages>();
    cached->source = s.source;
    cached->indices = s.images;
    cached->embedded = embed_images(*model, *s.source->data, s.images, cfg.batch_size);
    image_cache.push_back(std::move(cached));
    return image_cache.back()->embedded;
}

Tensor Evaluator::Impl::texts(const std::vector<std::string>& list) {
    std::vector<std::string> missing;
    std::set<std::string> queued;
    for (const std::string& t : list)
        if (!text_row.count(t) && queued.insert(t).second) missing.push_back(t);
    if (!missing.empty()) {
        const Tensor f = embed_texts(*model, tok, missing, cfg.batch_size);   // (M, E)
        embed_dim = f.size(1);
        const std::vector<float> values = f.to_vector<float>();
        const int64_t first = int64_t(text_features.size()) / embed_dim;
        text_features.insert(text_features.end(), values.begin(), values.end());
        for (size_t k = 0; k < missing.size(); k++) text_row[missing[k]] = first + int64_t(k);
    }
    std::vector<float> out;
    out.reserve(list.size() * size_t(embed_dim));
    for (const std::string& t : list) {
        const float* row = text_features.data() + text_row.at(t) * embed_dim;
        out.insert(out.end(), row, row + embed_dim);
    }
    return from_vector(out, {int64_t(list.size()), embed_dim});   // (N, E)
}

std::vector<std::string> Evaluator::Impl::captions_of(const Selection& s) {
    if (!s.captions_from_samples) return s.captions;
    const std::vector<std::string>& captions = images(s).captions;
    for (size_t i = 0; i < captions.size(); i++)
        RC_CHECK(!captions[i].empty(), "eval: sample ", s.images[i], " of ", s.source->data->describe(),
                 " has no caption (retrieval and consistency need captioned pairs)");
    return captions;
}

Evaluator::Evaluator(const EvalConfig& cfg, const Tokenizer& tok) : impl_(std::make_unique<Impl>(cfg, tok)) {}
Evaluator::~Evaluator() = default;

EvalMetrics Evaluator::run(const CLIP& model) {
    Impl& m = *impl_;
    m.model = &model;
    m.image_cache.clear();
    m.text_row.clear();
    m.text_features.clear();
    EvalMetrics out;
    for (const Impl::Job& job : m.jobs) {
        const auto start = std::chrono::steady_clock::now();
        const char* what = "";
        switch (job.kind) {
            case Impl::Job::ZeroShot:
                what = "zero-shot";
                m.run_zero_shot(job, out);
                break;
            case Impl::Job::Retrieval:
                what = "retrieval";
                m.run_retrieval(job, out);
                break;
            case Impl::Job::Consistency:
                what = "consistency";
                m.run_consistency(job, out);
                break;
            case Impl::Job::Probe:
                what = "linear probe";
                m.run_probe(job, out);
                break;
        }
        if (m.cfg.verbose) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::fprintf(stderr, "eval: %s on %s (%zu images%s): %.1f s\n", what, job.name.c_str(),
                         job.data.images.size(),
                         job.kind == Impl::Job::Probe ? str_cat(" + ", job.test.images.size(), " test").c_str() : "",
                         secs);
        }
    }
    m.model = nullptr;
    m.image_cache.clear();   // the features belong to this model: free them
    m.text_row.clear();
    m.text_features.clear();
    return out;
}

EvalMetrics evaluate(const CLIP& model, const EvalConfig& cfg, const Tokenizer& tok) {
    return Evaluator(cfg, tok).run(model);
}

// ---- output ----

static std::string format_value(const std::string& key, double v) {
    if (std::isnan(v)) return "nan";
    const bool count = key == "n" || key == "images" || key == "captions" || key == "pairs" ||
                       ends_with(key, "_n");
    if (count && v == std::floor(v) && std::abs(v) < 1e15) return str_cat((long long)v);
    char buf[64];
    std::snprintf(buf, sizeof(buf), key == "l2" ? "%g" : "%.4f", v);
    return buf;
}

std::string format_eval_table(const EvalMetrics& metrics) {
    // Groups in order of first appearance: name up to the last '/' -> "key value" cells.
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    for (const auto& [name, value] : metrics) {
        const size_t slash = name.rfind('/');
        const std::string group = slash == std::string::npos ? "" : name.substr(0, slash);
        const std::string key = slash == std::string::npos ? name : name.substr(slash + 1);
        auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == group; });
        if (it == groups.end()) it = groups.insert(groups.end(), {group, {}});
        it->second.push_back(key + " " + format_value(key, value));
    }
    size_t width = 0;
    for (const auto& g : groups) width = std::max(width, g.first.size());
    width = std::min<size_t>(width, 40);
    const size_t line_limit = 110;
    std::string out;
    for (const auto& [group, cells] : groups) {
        std::string line = group + std::string(width > group.size() ? width - group.size() : 0, ' ');
        size_t cells_on_line = 0;
        for (const std::string& cell : cells) {
            if (cells_on_line > 0 && line.size() + 2 + cell.size() > line_limit) {
                out += line + "\n";
                line = std::string(width, ' ');
                cells_on_line = 0;
            }
            line += "  " + cell;
            cells_on_line++;
        }
        out += line + "\n";
    }
    return out;
}

Json eval_metrics_json(const EvalMetrics& metrics) {
    Json object = Json::object();
    for (const auto& [name, value] : metrics) object.set(name, Json(value));
    return object;
}

}  // namespace rankclip
