// data/raster.h
// defines: a small anti-aliased rasteriser for RGB8 Images (fill_solid, fill_linear_gradient,
// add_value_noise, draw_circle, draw_polygon, regular_polygon, star_polygon, cross_polygon).
// The synthetic dataset draws its shapes with it. Anti-aliasing is by coverage from the signed
// distance to the shape's outline: a pixel whose centre lies d pixels outside the edge gets
// coverage clamp(0.5 - d, 0, 1), so an edge crossing a pixel gives an intermediate value and the
// cost is one distance evaluation per pixel of the shape's bounding box (no supersampling).
// Coordinates are in pixels; pixel (x, y) covers [x, x+1) x [y, y+1), its centre is (x+0.5, y+0.5).
#pragma once
#include <cstdint>
#include <vector>

#include "data/image.h"

namespace rankclip {

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
};

struct Point {
    float x = 0, y = 0;
};

// Every pixel = colour.
void fill_solid(Image& img, Rgb colour);

// A linear gradient from `from` to `to` along the direction at `angle` radians (0: left to right,
// pi/2: top to bottom), spanning the whole image.
void fill_linear_gradient(Image& img, Rgb from, Rgb to, float angle);

// Adds deterministic noise of +-amplitude (per pixel, the same offset on all three channels so
// the hue is kept) from a hash of (seed, x, y), clamped to [0, 255].
void add_value_noise(Image& img, int amplitude, uint64_t seed);

// Blends `colour` into the pixels covered by the disc of centre (cx, cy) and radius r.
void draw_circle(Image& img, float cx, float cy, float r, Rgb colour);

// Blends `colour` into the pixels covered by a simple polygon (vertices in order, either winding;
// it may be concave, like a star).
void draw_polygon(Image& img, const std::vector<Point>& vertices, Rgb colour);

// Polygon vertices centred on (cx, cy), rotated by `rotation` radians (0 puts the first vertex
// straight up, at (cx, cy - r)):
//   regular_polygon: `sides` vertices on the circle of radius r;
//   star_polygon: `points` tips at radius r alternating with inner vertices at r * inner_ratio;
//   cross_polygon: a plus sign of half-extent r and arm half-width r * arm_ratio (12 vertices).
std::vector<Point> regular_polygon(float cx, float cy, float r, int sides, float rotation);
std::vector<Point> star_polygon(float cx, float cy, float r, int points, float inner_ratio,
                                float rotation);
std::vector<Point> cross_polygon(float cx, float cy, float r, float arm_ratio, float rotation);

// Signed distance from p to the polygon's outline: negative inside, positive outside.
float polygon_signed_distance(const std::vector<Point>& vertices, Point p);

}  // namespace rankclip
