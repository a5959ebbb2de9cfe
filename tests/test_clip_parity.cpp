// tests/test_clip_parity.cpp
// tests: the CLIP model against the PyTorch mirror (tools/clip_mirror.py, OpenAI's model.py),
// through tests/ref/clip_tiny.safetensors and clip_small2.safetensors (tools/gen_clip_refs.py
// documents their layout). For each: the model is built from the stored config and seed, and
//   - its parameter names are exactly torch's, and every initial value equals torch's: the
//     per-parameter checksums (sequential float64 sum, sum of squares, first, last) must be
//     equal to the last bit, and the generator must then draw the stored input images exactly;
//   - on the stored batch, the normalised features, the logits and the CLIP loss match torch's
//     to 1e-5 relative, and the gradient of every parameter to 1e-4 relative to that gradient's
//     largest magnitude (fp32, CPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "engine/json.h"
#include "engine/ops.h"
#include "models/clip.h"
#include "reference_file.h"
#include "test_util.h"

using namespace rankclip;
using rankclip::test::load_reference;
using rankclip::test::ReferenceFile;

namespace {

// tests/ref/clip_<variant>.safetensors (committed; missing, it is a failure naming its generator).
const ReferenceFile& reference(const std::string& variant) {
    return load_reference("tests/ref/clip_" + variant + ".safetensors", "tools/gen_clip_refs.py");
}

// What the generator built its model from: CLIP(config_of(ref), gen) with gen seeded by seed_of(ref).
CLIPConfig config_of(const ReferenceFile& ref) { return CLIPConfig::from_json(ref.meta("config")); }
uint64_t seed_of(const ReferenceFile& ref) { return uint64_t(ref.meta("seed").as_int()); }

// The symmetric CLIP loss: (CE(logits, arange) + CE(logits^T, arange)) / 2.
Tensor clip_loss(const Tensor& logits_per_image) {
    int64_t B = logits_per_image.size(0);
    Tensor labels = arange(0, double(B), 1, DType::I64, logits_per_image.device());
    return (cross_entropy(logits_per_image, labels) + cross_entropy(logits_per_image.t(), labels)) * 0.5;
}

// max |a - b| / max |ref|: relative to the tensor's scale, so near-zero elements do not dominate.
double relative_error(const Tensor& a, const Tensor& ref) {
    auto av = a.to_vector<double>(), bv = ref.to_vector<double>();
    double worst = 0, scale = 0;
    for (size_t i = 0; i < av.size(); i++) {
        worst = std::max(worst, std::abs(av[i] - bv[i]));
        scale = std::max(scale, std::abs(bv[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

// Sequential float64 checksums, the same loop order as np.cumsum in the generator.
std::vector<double> checksum(const Tensor& t) {
    std::vector<float> v = t.to_vector<float>();
    double s = 0, s2 = 0;
    for (float x : v) {
        s += double(x);
        s2 += double(x) * double(x);
    }
    return {s, s2, double(v.front()), double(v.back())};
}

void check_init(const std::string& variant) {
    const ReferenceFile& ref = reference(variant);
    Generator gen(seed_of(ref));
    CLIP model(config_of(ref), gen);

    // names: exactly the mirror's state_dict keys
    Json order = ref.meta("param_order");
    std::set<std::string> torch_names, our_names;
    for (size_t i = 0; i < order.size(); i++) torch_names.insert(order.at(i).as_string());
    for (auto& [name, p] : model.named_parameters()) our_names.insert(name);
    EXPECT_EQ(our_names, torch_names);
    EXPECT_EQ(model.named_parameters().size(), order.size());

    int exact = 0, total = 0;
    for (auto& [name, p] : model.named_parameters()) {
        total++;
        std::vector<double> want = ref.get("init." + name).to_vector<double>();
        std::vector<double> have = checksum(p);
        bool same = std::memcmp(want.data(), have.data(), 4 * sizeof(double)) == 0;
        exact += same;
        EXPECT_TRUE(same) << variant << ": initial " << name << " differs from torch's: sum " << have[0] << " vs "
                          << want[0] << ", sum of squares " << have[1] << " vs " << want[1] << ", first " << have[2]
                          << " vs " << want[2] << ", last " << have[3] << " vs " << want[3];
    }
    // The generator has consumed exactly what torch's did: the next draw is the stored images.
    const Tensor& images = ref.get("input.images");
    Tensor drawn = randn(images.shape(), gen);
    EXPECT_EQ(std::memcmp(drawn.raw_data(), images.raw_data(), size_t(images.numel()) * sizeof(float)), 0)
        << variant << ": the images drawn after the init differ from torch's";
    std::printf("[ init parity %s ] %d of %d parameters bit-identical to torch\n", variant.c_str(), exact, total);
}

void check_forward_backward(const std::string& variant) {
    const ReferenceFile& ref = reference(variant);
    Generator gen(seed_of(ref));
    CLIP model(config_of(ref), gen);
    const Tensor& images = ref.get("input.images");
    const Tensor& text = ref.get("input.text");

    auto start = std::chrono::steady_clock::now();
    CLIPOutput out = model.forward(images, text);
    Tensor loss = clip_loss(out.logits_per_image);
    loss.backward();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    double e_img = relative_error(out.image_features, ref.get("out.image_features"));
    double e_txt = relative_error(out.text_features, ref.get("out.text_features"));
    double e_logits = relative_error(out.logits_per_image, ref.get("out.logits_per_image"));
    double e_loss = relative_error(loss, ref.get("out.loss"));
    EXPECT_LE(e_img, 1e-5) << variant << ": image features";
    EXPECT_LE(e_txt, 1e-5) << variant << ": text features";
    EXPECT_LE(e_logits, 1e-5) << variant << ": logits";
    EXPECT_LE(e_loss, 1e-5) << variant << ": loss " << loss.item() << " vs " << ref.get("out.loss").item();

    double worst = 0;
    std::string worst_name;
    for (auto& [name, p] : model.named_parameters()) {
        ASSERT_TRUE(p.grad().defined()) << variant << ": " << name << " got no gradient";
        Tensor grad = p.grad();
        const Tensor& want = ref.get("grad." + name);
        std::string rows_name = "grad_rows." + name;
        if (ref.has(rows_name)) {
            // only the rows of ids in the batch are stored; every other row must be exactly zero
            const Tensor& rows = ref.get(rows_name);
            std::vector<bool> in_batch(size_t(grad.size(0)), false);
            for (int64_t id : rows.to_vector<int64_t>()) {
                ASSERT_TRUE(id >= 0 && id < grad.size(0)) << ref.path << ": bad row id " << id;
                in_batch[size_t(id)] = true;
            }
            std::vector<float> g = grad.to_vector<float>();
            int64_t nonzero_outside = 0;
            for (int64_t r = 0; r < grad.size(0); r++)
                if (!in_batch[size_t(r)])
                    for (int64_t c = 0; c < grad.size(1); c++) nonzero_outside += g[r * grad.size(1) + c] != 0.0f;
            EXPECT_EQ(nonzero_outside, 0) << variant << ": " << name << " has gradient outside the batch's ids";
            grad = index_select(grad, 0, rows);
        }
        ASSERT_EQ(grad.shape(), want.shape()) << variant << ": " << name;
        double e = relative_error(grad, want);
        EXPECT_LE(e, 1e-4) << variant << ": gradient of " << name;
        if (e > worst) worst = e, worst_name = name;
    }
    std::printf("[ parity %s ] max relative error: image features %.2e, text features %.2e, logits %.2e, "
                "loss %.2e; gradients %.2e (%s); forward+backward %.3f s\n",
                variant.c_str(), e_img, e_txt, e_logits, e_loss, worst, worst_name.c_str(), seconds);
}

TEST(CLIPParity, TinyInitIsBitIdentical) { check_init("tiny"); }
TEST(CLIPParity, Small2InitIsBitIdentical) { check_init("small2"); }
TEST(CLIPParity, TinyForwardBackwardMatchesTorch) { check_forward_backward("tiny"); }
TEST(CLIPParity, Small2ForwardBackwardMatchesTorch) { check_forward_backward("small2"); }

}  // namespace
