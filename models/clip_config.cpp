// models/clip_config.cpp
// defines: the CLIP presets, CLIPConfig validation and its JSON form.
#include "models/clip_config.h"

#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace rankclip {

namespace {

// The integer fields, in JSON order, with accessors: one table drives to_json, from_json and ==.
struct IntField {
    const char* name;
    int64_t CLIPConfig::*member;
};
const IntField kIntFields[] = {
    {"image_size", &CLIPConfig::image_size},         {"patch_size", &CLIPConfig::patch_size},
    {"vision_width", &CLIPConfig::vision_width},     {"vision_layers", &CLIPConfig::vision_layers},
    {"vision_heads", &CLIPConfig::vision_heads},     {"context_length", &CLIPConfig::context_length},
    {"vocab_size", &CLIPConfig::vocab_size},         {"text_width", &CLIPConfig::text_width},
    {"text_layers", &CLIPConfig::text_layers},       {"text_heads", &CLIPConfig::text_heads},
    {"embed_dim", &CLIPConfig::embed_dim},
};

}  // namespace

void CLIPConfig::validate() const {
    for (const IntField& f : kIntFields) {
        int64_t v = this->*f.member;
        bool layers = f.member == &CLIPConfig::vision_layers || f.member == &CLIPConfig::text_layers;
        RC_CHECK(layers ? v >= 0 : v > 0, "CLIPConfig: ", f.name, " must be ", layers ? ">= 0" : "positive",
                 ", got ", v);
    }
    RC_CHECK(image_size % patch_size == 0, "CLIPConfig: image_size ", image_size, " is not a multiple of patch_size ",
             patch_size);
    RC_CHECK(vision_width % vision_heads == 0, "CLIPConfig: vision_width ", vision_width,
             " is not a multiple of vision_heads ", vision_heads);
    RC_CHECK(text_width % text_heads == 0, "CLIPConfig: text_width ", text_width, " is not a multiple of text_heads ",
             text_heads);
    RC_CHECK(vocab_size >= 2, "CLIPConfig: vocab_size must be at least 2 (a token and end-of-text), got ",
             vocab_size);
}

Json CLIPConfig::to_json() const {
    Json j = Json::object();
    for (const IntField& f : kIntFields) j.set(f.name, this->*f.member);
    j.set("quick_gelu", quick_gelu);
    if (init_logit_scale != CLIPConfig().init_logit_scale) j.set("init_logit_scale", init_logit_scale);
    if (logit_bias) j.set("init_logit_bias", init_logit_bias);
    return j;
}

CLIPConfig CLIPConfig::from_json(const Json& json) {
    RC_CHECK(json.is_object(), "CLIPConfig: expected a JSON object, got ", json.type_name());
    CLIPConfig c;
    for (const auto& [key, value] : json.as_object()) {
        bool known = key == "quick_gelu" || key == "init_logit_scale" || key == "init_logit_bias";
        for (const IntField& f : kIntFields) known = known || key == f.name;
        RC_CHECK(known, "CLIPConfig: unknown key '", key, "'");
    }
    for (const IntField& f : kIntFields) {
        const Json* v = json.find(f.name);
        RC_CHECK(v != nullptr, "CLIPConfig: missing key '", f.name, "'");
        RC_CHECK(v->is_int(), "CLIPConfig: '", f.name, "' must be an integer, got ", v->type_name());
        c.*f.member = v->as_int();
    }
    c.quick_gelu = false;
    if (const Json* v = json.find("quick_gelu")) {
        RC_CHECK(v->is_bool(), "CLIPConfig: 'quick_gelu' must be true or false, got ", v->type_name());
        c.quick_gelu = v->as_bool();
    }
    for (const char* key : {"init_logit_scale", "init_logit_bias"})
        if (const Json* v = json.find(key)) RC_CHECK(v->is_number(), "CLIPConfig: '", key, "' must be a number, got ",
                                                     v->type_name());
    if (const Json* v = json.find("init_logit_scale")) c.init_logit_scale = v->as_double();
    if (const Json* v = json.find("init_logit_bias")) c.logit_bias = true, c.init_logit_bias = v->as_double();
    c.validate();
    return c;
}

CLIPConfig CLIPConfig::from_json_string(const std::string& text) { return from_json(Json::parse(text)); }

CLIPConfig CLIPConfig::from_json_file(const std::string& path) {
    std::ifstream in(path);
    RC_CHECK(in.good(), "CLIPConfig: cannot open config file '", path, "'");
    std::stringstream buffer;
    buffer << in.rdbuf();
    try {
        return from_json_string(buffer.str());
    } catch (const Error& e) {
        throw Error(str_cat(path, ": ", e.what()));
    }
}

bool CLIPConfig::operator==(const CLIPConfig& o) const {
    for (const IntField& f : kIntFields)
        if (this->*f.member != o.*f.member) return false;
    return quick_gelu == o.quick_gelu && init_logit_scale == o.init_logit_scale && logit_bias == o.logit_bias &&
           (!logit_bias || init_logit_bias == o.init_logit_bias);
}

std::vector<std::string> clip_config_names() { return {"tiny", "small", "b32", "b16"}; }

CLIPConfig clip_config(const std::string& name) {
    CLIPConfig c;  // the defaults are tiny
    if (name == "tiny") return c;
    if (name == "small") {
        c.image_size = 64, c.patch_size = 8, c.vision_width = 256, c.vision_layers = 6, c.vision_heads = 4;
        c.context_length = 32, c.vocab_size = 49408, c.text_width = 256, c.text_layers = 6, c.text_heads = 4;
        c.embed_dim = 256;
        return c;
    }
    if (name == "b32" || name == "b16") {
        c.image_size = 224, c.patch_size = name == "b32" ? 32 : 16;
        c.vision_width = 768, c.vision_layers = 12, c.vision_heads = 12;
        c.context_length = 77, c.vocab_size = 49408, c.text_width = 512, c.text_layers = 12, c.text_heads = 8;
        c.embed_dim = 512, c.quick_gelu = true;
        return c;
    }
    RC_CHECK(false, "clip_config: unknown config '", name, "' (known: tiny, small, b32, b16)");
    return c;
}

}  // namespace rankclip
