// data/raster.cpp
// defines: the anti-aliased rasteriser declared in data/raster.h (coverage from signed distance).
#include "data/raster.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace rankclip {

static void check_image(const Image& img, const char* op) {
    RC_CHECK(img.width > 0 && img.height > 0 &&
                 img.rgb.size() == size_t(img.width) * size_t(img.height) * 3,
             op, ": image must be (", img.height, ", ", img.width, ", 3) RGB8 with ",
             size_t(img.width) * size_t(img.height) * 3, " bytes, has ", img.rgb.size());
}

static uint8_t clamp_byte(float v) {
    return uint8_t(std::min(255.0f, std::max(0.0f, v + 0.5f)));
}

void fill_solid(Image& img, Rgb colour) {
    check_image(img, "fill_solid");
    for (size_t i = 0; i < img.rgb.size(); i += 3) {
        img.rgb[i] = colour.r;
        img.rgb[i + 1] = colour.g;
        img.rgb[i + 2] = colour.b;
    }
}

void fill_linear_gradient(Image& img, Rgb from, Rgb to, float angle) {
    check_image(img, "fill_linear_gradient");
    float dx = std::cos(angle), dy = std::sin(angle);
    // Project the four corners to find the extent of the gradient along (dx, dy).
    float w = float(img.width), h = float(img.height);
    float corners[4] = {0.0f, w * dx, h * dy, w * dx + h * dy};
    float lo = *std::min_element(corners, corners + 4), hi = *std::max_element(corners, corners + 4);
    float inv = hi > lo ? 1.0f / (hi - lo) : 0.0f;
    for (int y = 0; y < img.height; y++) {
        for (int x = 0; x < img.width; x++) {
            float t = ((x + 0.5f) * dx + (y + 0.5f) * dy - lo) * inv;
            uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
            p[0] = clamp_byte(from.r + (float(to.r) - from.r) * t);
            p[1] = clamp_byte(from.g + (float(to.g) - from.g) * t);
            p[2] = clamp_byte(from.b + (float(to.b) - from.b) * t);
        }
    }
}

// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void add_value_noise(Image& img, int amplitude, uint64_t seed) {
    check_image(img, "add_value_noise");
    if (amplitude <= 0) return;
    uint64_t base = mix64(seed);
    int span = 2 * amplitude + 1;
    for (int y = 0; y < img.height; y++) {
        for (int x = 0; x < img.width; x++) {
            uint64_t h = mix64(base ^ (uint64_t(y) << 32 | uint32_t(x)));
            int offset = int(h % uint64_t(span)) - amplitude;
            uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
            for (int c = 0; c < 3; c++) p[c] = uint8_t(std::min(255, std::max(0, p[c] + offset)));
        }
    }
}

// Blends colour into pixel (x, y) with weight `coverage` in [0, 1].
static void blend(Image& img, int x, int y, Rgb colour, float coverage) {
    uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
    if (coverage >= 1.0f) {
        p[0] = colour.r; p[1] = colour.g; p[2] = colour.b;
        return;
    }
    p[0] = clamp_byte(p[0] + (float(colour.r) - p[0]) * coverage);
    p[1] = clamp_byte(p[1] + (float(colour.g) - p[1]) * coverage);
    p[2] = clamp_byte(p[2] + (float(colour.b) - p[2]) * coverage);
}

// Blends colour into every pixel of the bounding box [x0, x1] x [y0, y1] (grown by one pixel,
// clipped to the image) with coverage clamp(0.5 - signed_distance(pixel centre), 0, 1).
template <typename SignedDistance>
static void rasterise(Image& img, float x0, float y0, float x1, float y1, Rgb colour,
                      SignedDistance&& signed_distance) {
    int ix0 = std::max(0, int(std::floor(x0 - 1))), iy0 = std::max(0, int(std::floor(y0 - 1)));
    int ix1 = std::min(img.width - 1, int(std::ceil(x1 + 1)));
    int iy1 = std::min(img.height - 1, int(std::ceil(y1 + 1)));
    for (int y = iy0; y <= iy1; y++) {
        for (int x = ix0; x <= ix1; x++) {
            float d = signed_distance(Point{x + 0.5f, y + 0.5f});
            float coverage = std::min(1.0f, std::max(0.0f, 0.5f - d));
            if (coverage > 0.0f) blend(img, x, y, colour, coverage);
        }
    }
}

void draw_circle(Image& img, float cx, float cy, float r, Rgb colour) {
    check_image(img, "draw_circle");
    RC_CHECK(r >= 0, "draw_circle: radius must be >= 0, got ", r);
    rasterise(img, cx - r, cy - r, cx + r, cy + r, colour, [&](Point p) {
        return std::hypot(p.x - cx, p.y - cy) - r;
    });
}

float polygon_signed_distance(const std::vector<Point>& v, Point p) {
    // Unsigned distance: the nearest edge. Sign: the even-odd crossing test of a ray towards +x.
    float best = INFINITY;
    bool inside = false;
    size_t n = v.size();
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        Point a = v[j], b = v[i];
        float ex = b.x - a.x, ey = b.y - a.y;
        float px = p.x - a.x, py = p.y - a.y;
        float len2 = ex * ex + ey * ey;
        float t = len2 > 0 ? std::min(1.0f, std::max(0.0f, (px * ex + py * ey) / len2)) : 0.0f;
        float qx = px - t * ex, qy = py - t * ey;
        best = std::min(best, qx * qx + qy * qy);
        if ((a.y > p.y) != (b.y > p.y)) {
            float x_cross = a.x + (p.y - a.y) / (b.y - a.y) * ex;
            if (p.x < x_cross) inside = !inside;
        }
    }
    float d = std::sqrt(best);
    return inside ? -d : d;
}

void draw_polygon(Image& img, const std::vector<Point>& vertices, Rgb colour) {
    check_image(img, "draw_polygon");
    RC_CHECK(vertices.size() >= 3, "draw_polygon: needs at least 3 vertices, got ",
             vertices.size());
    float x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (const Point& q : vertices) {
        x0 = std::min(x0, q.x); x1 = std::max(x1, q.x);
        y0 = std::min(y0, q.y); y1 = std::max(y1, q.y);
    }
    rasterise(img, x0, y0, x1, y1, colour,
              [&](Point p) { return polygon_signed_distance(vertices, p); });
}

// The point at distance r from (cx, cy) in direction `angle`, measured clockwise from straight up
// (image y grows downwards).
static Point polar(float cx, float cy, float r, float angle) {
    return Point{cx + r * std::sin(angle), cy - r * std::cos(angle)};
}

std::vector<Point> regular_polygon(float cx, float cy, float r, int sides, float rotation) {
    RC_CHECK(sides >= 3, "regular_polygon: needs at least 3 sides, got ", sides);
    std::vector<Point> out(sides);
    for (int i = 0; i < sides; i++)
        out[i] = polar(cx, cy, r, rotation + float(2 * M_PI) * i / sides);
    return out;
}

std::vector<Point> star_polygon(float cx, float cy, float r, int points, float inner_ratio,
                                float rotation) {
    RC_CHECK(points >= 3, "star_polygon: needs at least 3 points, got ", points);
    std::vector<Point> out(2 * points);
    for (int i = 0; i < 2 * points; i++)
        out[i] = polar(cx, cy, i % 2 ? r * inner_ratio : r, rotation + float(M_PI) * i / points);
    return out;
}

std::vector<Point> cross_polygon(float cx, float cy, float r, float arm_ratio, float rotation) {
    float a = r * arm_ratio;
    // A plus sign in its own frame (x right, y down), clockwise from the top arm's left corner.
    const float local[12][2] = {{-a, -r}, {a, -r}, {a, -a}, {r, -a}, {r, a}, {a, a},
                                {a, r},   {-a, r}, {-a, a}, {-r, a}, {-r, -a}, {-a, -a}};
    float c = std::cos(rotation), s = std::sin(rotation);
    std::vector<Point> out(12);
    for (int i = 0; i < 12; i++) {
        float x = local[i][0], y = local[i][1];
        out[i] = Point{cx + x * c - y * s, cy + x * s + y * c};
    }
    return out;
}

}  // namespace rankclip
