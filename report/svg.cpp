// report/svg.cpp
// defines: the SVG writer of report/svg.h: escaping, number format, the width estimate and the
// elements, each written on its own line.
#include "report/svg.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace rankclip {

std::string Colour::hex() const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
    return buf;
}

std::string xml_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string svg_number(double v) {
    if (!std::isfinite(v)) return "0";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    if (s == "-0") s = "0";
    return s;
}

double text_width(const std::string& text, double size, bool bold) {
    double em = 0;
    for (unsigned char c : text) {
        if (c >= 0x80 && (c & 0xC0) == 0x80) continue;   // UTF-8 continuation byte
        if (std::strchr("il.,:;'|!ijt()[]", c) && c) em += 0.32;
        else if (c == ' ') em += 0.32;
        else if (std::strchr("mwMW@%", c) && c) em += 0.92;
        else if (c >= 'A' && c <= 'Z') em += 0.70;
        else em += 0.60;
    }
    return em * size * (bold ? 1.07 : 1.0);
}

namespace {

const char* anchor_name(TextAnchor a) {
    return a == TextAnchor::Start ? "start" : a == TextAnchor::Middle ? "middle" : "end";
}

std::string class_attr(const std::string& css_class) {
    return css_class.empty() ? "" : " class=\"" + xml_escape(css_class) + "\"";
}

}  // namespace

Svg::Svg(double width, double height) {
    const std::string w = svg_number(width), h = svg_number(height);
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
           " " + h + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    rect({0, 0, width, height}, {255, 255, 255});
}

void Svg::rect(const Box& b, Colour fill, double fill_opacity) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<rect x=\"" + svg_number(b.x) + "\" y=\"" + svg_number(b.y) + "\" width=\"" + svg_number(b.w) +
            "\" height=\"" + svg_number(b.h) + "\" fill=\"" + fill.hex() + "\"" +
            (fill_opacity < 1 ? " fill-opacity=\"" + svg_number(fill_opacity) + "\"" : "") + "/>\n";
}

void Svg::rect_outline(const Box& b, Colour stroke, double stroke_width) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<rect x=\"" + svg_number(b.x) + "\" y=\"" + svg_number(b.y) + "\" width=\"" + svg_number(b.w) +
            "\" height=\"" + svg_number(b.h) + "\" fill=\"none\" stroke=\"" + stroke.hex() + "\" stroke-width=\"" +
            svg_number(stroke_width) + "\"/>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, Colour stroke, double width) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<line x1=\"" + svg_number(x1) + "\" y1=\"" + svg_number(y1) + "\" x2=\"" + svg_number(x2) + "\" y2=\"" +
            svg_number(y2) + "\" stroke=\"" + stroke.hex() + "\" stroke-width=\"" + svg_number(width) + "\"/>\n";
}

void Svg::polyline(const std::vector<SvgPoint>& points, Colour stroke, double width, double opacity,
                   const std::string& css_class) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    size_t i = 0;
    while (i < points.size()) {
        while (i < points.size() && !(std::isfinite(points[i].x) && std::isfinite(points[i].y))) i++;
        std::string coords;
        size_t n = 0;
        for (; i < points.size() && std::isfinite(points[i].x) && std::isfinite(points[i].y); i++, n++)
            coords += (n ? " " : "") + svg_number(points[i].x) + "," + svg_number(points[i].y);
        if (n < 2) continue;
        out_ += "<polyline" + class_attr(css_class) + " points=\"" + coords + "\" fill=\"none\" stroke=\"" +
                stroke.hex() + "\" stroke-width=\"" + svg_number(width) + "\"" +
                (opacity < 1 ? " stroke-opacity=\"" + svg_number(opacity) + "\"" : "") +
                " stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
    }
}

void Svg::polygon(const std::vector<SvgPoint>& points, Colour fill, double fill_opacity, const std::string& css_class) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    if (points.size() < 3) return;
    std::string coords;
    for (const SvgPoint& q : points) {
        if (!std::isfinite(q.x) || !std::isfinite(q.y)) return;
        coords += (coords.empty() ? "" : " ") + svg_number(q.x) + "," + svg_number(q.y);
    }
    out_ += "<polygon" + class_attr(css_class) + " points=\"" + coords + "\" fill=\"" + fill.hex() +
            "\" fill-opacity=\"" + svg_number(fill_opacity) + "\" stroke=\"none\"/>\n";
}

void Svg::circle(double cx, double cy, double r, Colour fill, Colour stroke, double stroke_width,
                 const std::string& css_class) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    if (!std::isfinite(cx) || !std::isfinite(cy)) return;
    out_ += "<circle" + class_attr(css_class) + " cx=\"" + svg_number(cx) + "\" cy=\"" + svg_number(cy) +
            "\" r=\"" + svg_number(r) + "\" fill=\"" + fill.hex() + "\"" +
            (stroke_width > 0 ? " stroke=\"" + stroke.hex() + "\" stroke-width=\"" + svg_number(stroke_width) + "\""
                              : std::string()) +
            "/>\n";
}

void Svg::text(double x, double y, const std::string& text, double size, Colour fill, TextAnchor anchor, bool bold,
               double rotate) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<text x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" font-size=\"" + svg_number(size) +
            "\" fill=\"" + fill.hex() + "\"" +
            (anchor != TextAnchor::Start ? std::string(" text-anchor=\"") + anchor_name(anchor) + "\"" : "") +
            (bold ? " font-weight=\"bold\"" : "") +
            (rotate != 0 ? " transform=\"rotate(" + svg_number(rotate) + " " + svg_number(x) + " " + svg_number(y) + ")\""
                         : std::string()) +
            ">" + xml_escape(text) + "</text>\n";
}

void Svg::clip_path(const std::string& id, const Box& b) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<clipPath id=\"" + xml_escape(id) + "\"><rect x=\"" + svg_number(b.x) + "\" y=\"" + svg_number(b.y) +
            "\" width=\"" + svg_number(b.w) + "\" height=\"" + svg_number(b.h) + "\"/></clipPath>\n";
}

void Svg::begin_group(double dx, double dy, const std::string& clip_id, const std::string& css_class) {
    RC_CHECK(!finished_, "Svg: drawing after finish()");
    out_ += "<g" + class_attr(css_class);
    if (dx != 0 || dy != 0) out_ += " transform=\"translate(" + svg_number(dx) + " " + svg_number(dy) + ")\"";
    if (!clip_id.empty()) out_ += " clip-path=\"url(#" + xml_escape(clip_id) + ")\"";
    out_ += ">\n";
    open_groups_++;
}

void Svg::end_group() {
    RC_CHECK(open_groups_ > 0, "Svg: end_group without begin_group");
    out_ += "</g>\n";
    open_groups_--;
}

std::string Svg::finish() {
    RC_CHECK(!finished_, "Svg: finish() twice");
    RC_CHECK(open_groups_ == 0, "Svg: ", open_groups_, " group(s) left open");
    finished_ = true;
    out_ += "</svg>\n";
    return std::move(out_);
}

void write_text_file(const std::string& path, const std::string& text) {
    write_file_atomic(path, text);
}

}  // namespace rankclip
