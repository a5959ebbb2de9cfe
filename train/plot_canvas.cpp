// train/plot_canvas.cpp
// defines: PlotCanvas's drawing: blending, rules, coverage-anti-aliased polylines and discs, and
// text blitted from the bitmap font's coverage masks.
#include "train/plot_canvas.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "train/bitmap_font.h"

namespace rankclip {

namespace {

uint8_t mix(uint8_t under, uint8_t over, float alpha) {
    return uint8_t(std::lround(under + (float(over) - float(under)) * alpha));
}

// Distance from p to the segment ab.
float segment_distance(Point p, Point a, Point b) {
    const float dx = b.x - a.x, dy = b.y - a.y;
    const float len2 = dx * dx + dy * dy;
    float t = len2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2 : 0.0f;
    t = std::clamp(t, 0.0f, 1.0f);
    const float ex = p.x - (a.x + t * dx), ey = p.y - (a.y + t * dy);
    return std::sqrt(ex * ex + ey * ey);
}

bool finite(Point p) { return std::isfinite(p.x) && std::isfinite(p.y); }

}  // namespace

PlotCanvas::PlotCanvas(int width, int height, Rgb background) {
    RC_CHECK(width > 0 && height > 0 && width <= kMaxImageSide && height <= kMaxImageSide,
             "PlotCanvas: bad size ", width, "x", height);
    image_.width = width;
    image_.height = height;
    image_.rgb.resize(size_t(width) * height * 3);
    for (size_t i = 0; i < size_t(width) * height; i++) {
        image_.rgb[3 * i] = background.r;
        image_.rgb[3 * i + 1] = background.g;
        image_.rgb[3 * i + 2] = background.b;
    }
}

Rgb PlotCanvas::pixel(int x, int y) const {
    RC_CHECK(x >= 0 && y >= 0 && x < width() && y < height(), "PlotCanvas::pixel: (", x, ", ", y,
             ") is outside the ", width(), "x", height(), " canvas");
    const uint8_t* p = &image_.rgb[(size_t(y) * width() + x) * 3];
    return {p[0], p[1], p[2]};
}

void PlotCanvas::blend(int x, int y, Rgb colour, float alpha) {
    if (x < 0 || y < 0 || x >= width() || y >= height() || !(alpha > 0)) return;
    uint8_t* p = &image_.rgb[(size_t(y) * width() + x) * 3];
    if (alpha >= 1) {
        p[0] = colour.r, p[1] = colour.g, p[2] = colour.b;
        return;
    }
    p[0] = mix(p[0], colour.r, alpha);
    p[1] = mix(p[1], colour.g, alpha);
    p[2] = mix(p[2], colour.b, alpha);
}

void PlotCanvas::fill_rect(const Rect& r, Rgb colour, float alpha) {
    for (int y = std::max(r.y, 0); y < std::min(r.bottom(), height()); y++)
        for (int x = std::max(r.x, 0); x < std::min(r.right(), width()); x++) blend(x, y, colour, alpha);
}

void PlotCanvas::stroke_rect(const Rect& r, Rgb colour, int thickness) {
    for (int t = 0; t < thickness; t++) {
        hline(r.x + t, r.right() - 1 - t, r.y + t, colour);
        hline(r.x + t, r.right() - 1 - t, r.bottom() - 1 - t, colour);
        vline(r.x + t, r.y + t, r.bottom() - 1 - t, colour);
        vline(r.right() - 1 - t, r.y + t, r.bottom() - 1 - t, colour);
    }
}

void PlotCanvas::hline(int x0, int x1, int y, Rgb colour, float alpha) {
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); x++) blend(x, y, colour, alpha);
}

void PlotCanvas::vline(int x, int y0, int y1, Rgb colour, float alpha) {
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); y++) blend(x, y, colour, alpha);
}

void PlotCanvas::draw_polyline(const std::vector<Point>& points, Rgb colour, float line_width, float alpha,
                               const Rect& clip_in) {
    Rect clip;   // clip_in intersected with the canvas
    clip.x = std::max(clip_in.x, 0);
    clip.y = std::max(clip_in.y, 0);
    clip.w = std::min(clip_in.right(), width()) - clip.x;
    clip.h = std::min(clip_in.bottom(), height()) - clip.y;
    if (clip.w <= 0 || clip.h <= 0 || points.empty()) return;
    const float half = std::max(line_width, 0.5f) * 0.5f;
    std::vector<float> coverage(size_t(clip.w) * clip.h, 0.0f);   // (clip.h, clip.w)
    const float reach = half + 1.0f;   // farthest a pixel centre can be and still be touched
    auto cover_segment = [&](Point a, Point b) {
        const int x0 = std::max(clip.x, int(std::floor(std::min(a.x, b.x) - reach)));
        const int x1 = std::min(clip.right() - 1, int(std::ceil(std::max(a.x, b.x) + reach)));
        const int y0 = std::max(clip.y, int(std::floor(std::min(a.y, b.y) - reach)));
        const int y1 = std::min(clip.bottom() - 1, int(std::ceil(std::max(a.y, b.y) + reach)));
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                const float d = segment_distance({x + 0.5f, y + 0.5f}, a, b);
                const float c = std::clamp(half + 0.5f - d, 0.0f, 1.0f);
                float& cell = coverage[size_t(y - clip.y) * clip.w + (x - clip.x)];
                cell = std::max(cell, c);
            }
    };
    // Segments are cut to the clip box grown by the line's reach (Liang-Barsky), so a point far
    // outside (a spike, a huge value) costs nothing and keeps the segment's direction.
    const float lo_x = clip.x - reach, hi_x = clip.right() + reach;
    const float lo_y = clip.y - reach, hi_y = clip.bottom() + reach;
    auto clip_segment = [&](Point& a, Point& b) {
        float t0 = 0, t1 = 1;
        const float dx = b.x - a.x, dy = b.y - a.y;
        const float p[4] = {-dx, dx, -dy, dy};
        const float q[4] = {a.x - lo_x, hi_x - a.x, a.y - lo_y, hi_y - a.y};
        for (int k = 0; k < 4; k++) {
            if (p[k] == 0) {
                if (q[k] < 0) return false;   // parallel to this edge and outside it
                continue;
            }
            const float t = q[k] / p[k];
            if (p[k] < 0) t0 = std::max(t0, t);
            else t1 = std::min(t1, t);
        }
        if (t0 > t1) return false;
        const Point a0 = a;
        a = {a0.x + t0 * dx, a0.y + t0 * dy};
        b = {a0.x + t1 * dx, a0.y + t1 * dy};
        return true;
    };
    bool have_previous = false;
    Point previous;
    for (const Point& p : points) {
        if (!finite(p)) {
            have_previous = false;
            continue;
        }
        Point a = have_previous ? previous : p, b = p;   // a lone point draws a dot
        if (clip_segment(a, b)) cover_segment(a, b);
        previous = p;
        have_previous = true;
    }
    for (int y = 0; y < clip.h; y++)
        for (int x = 0; x < clip.w; x++) {
            const float c = coverage[size_t(y) * clip.w + x];
            if (c > 0) blend(clip.x + x, clip.y + y, colour, c * alpha);
        }
}

void PlotCanvas::draw_disc(Point centre, float radius, Rgb colour, const Rect& clip, float ring,
                           Rgb ring_colour) {
    if (!finite(centre)) return;
    const float outer = radius + std::max(ring, 0.0f);
    const int x0 = std::max(clip.x, int(std::floor(centre.x - outer - 1)));
    const int x1 = std::min(clip.right() - 1, int(std::ceil(centre.x + outer + 1)));
    const int y0 = std::max(clip.y, int(std::floor(centre.y - outer - 1)));
    const int y1 = std::min(clip.bottom() - 1, int(std::ceil(centre.y + outer + 1)));
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const float dx = x + 0.5f - centre.x, dy = y + 0.5f - centre.y;
            const float d = std::sqrt(dx * dx + dy * dy);
            if (ring > 0) blend(x, y, ring_colour, std::clamp(outer + 0.5f - d, 0.0f, 1.0f));
            blend(x, y, colour, std::clamp(radius + 0.5f - d, 0.0f, 1.0f));
        }
}

Rect PlotCanvas::draw_text(const std::string& text, int x, int y, int scale, Rgb colour, TextAlign align,
                           bool bold) {
    const TextMask mask = render_text(text, scale, bold);
    int left = x;
    if (align == TextAlign::Center) left = x - mask.width / 2;
    if (align == TextAlign::Right) left = x - mask.width;
    for (int j = 0; j < mask.height; j++)
        for (int i = 0; i < mask.width; i++) blend(left + i, y + j, colour, mask.at(i, j));
    return {left, y, mask.width, mask.height};
}

Rect PlotCanvas::draw_text_vertical(const std::string& text, int cx, int cy, int scale, Rgb colour, bool bold) {
    const TextMask mask = render_text(text, scale, bold);
    // Rotated counter-clockwise: mask column i goes up the canvas, mask row j goes right.
    const Rect box{cx - mask.height / 2, cy - mask.width / 2, mask.height, mask.width};
    for (int j = 0; j < mask.height; j++)
        for (int i = 0; i < mask.width; i++) blend(box.x + j, box.bottom() - 1 - i, colour, mask.at(i, j));
    return box;
}

}  // namespace rankclip
