// train/plot_canvas.h
// defines: PlotCanvas, the raster surface the plots are drawn on: an RGB8 Image with alpha
// blending, crisp rectangles and 1-px rules (axes, grid), anti-aliased thick polylines and discs
// (data), and text from the bitmap font, horizontal or rotated (axis labels). Rect, a pixel box.
// Lines are anti-aliased by coverage from the distance to the segment (a capsule of the line's
// half width): coverage = clamp(half_width + 0.5 - distance, 0, 1). A polyline takes, per pixel,
// the largest coverage over its segments before blending once, so joins are not drawn twice
// (no dark blobs where segments meet) and a translucent line stays evenly translucent.
#pragma once
#include <string>
#include <vector>

#include "data/image.h"
#include "data/raster.h"

namespace rankclip {

// Pixels [x, x + w) x [y, y + h).
struct Rect {
    int x = 0, y = 0, w = 0, h = 0;
    int right() const { return x + w; }    // one past the last column
    int bottom() const { return y + h; }   // one past the last row
    bool contains(int px, int py) const { return px >= x && py >= y && px < right() && py < bottom(); }
    bool overlaps(const Rect& o) const { return x < o.right() && o.x < right() && y < o.bottom() && o.y < bottom(); }
};

enum class TextAlign { Left, Center, Right };

class PlotCanvas {
public:
    PlotCanvas(int width, int height, Rgb background);

    int width() const { return image_.width; }
    int height() const { return image_.height; }
    const Image& image() const { return image_; }
    Image take_image() { return std::move(image_); }
    Rgb pixel(int x, int y) const;

    // colour over the pixel with opacity alpha in [0, 1]; pixels outside the canvas are ignored.
    void blend(int x, int y, Rgb colour, float alpha);
    void fill_rect(const Rect& r, Rgb colour, float alpha = 1.0f);
    void stroke_rect(const Rect& r, Rgb colour, int thickness = 1);   // drawn inside r
    void hline(int x0, int x1, int y, Rgb colour, float alpha = 1.0f);  // columns [x0, x1]
    void vline(int x, int y0, int y1, Rgb colour, float alpha = 1.0f);  // rows [y0, y1]

    // Anti-aliased polyline of the given width (pixels), clipped to `clip`. Coordinates are in
    // pixels with (x + 0.5, y + 0.5) the centre of pixel (x, y). Non-finite points break the line.
    void draw_polyline(const std::vector<Point>& points, Rgb colour, float line_width, float alpha,
                       const Rect& clip);
    // Anti-aliased disc, clipped to `clip`; an outline of width `ring` in ring_colour when ring > 0.
    void draw_disc(Point centre, float radius, Rgb colour, const Rect& clip, float ring = 0,
                   Rgb ring_colour = {255, 255, 255});

    // Text with its cell's top at y (the cell is kFontCellHeight * scale tall); x is the left edge,
    // centre or right edge per align. Returns the box it covers.
    Rect draw_text(const std::string& text, int x, int y, int scale, Rgb colour,
                   TextAlign align = TextAlign::Left, bool bold = false);
    // Text rotated 90 degrees counter-clockwise (reads bottom to top), centred on (cx, cy).
    Rect draw_text_vertical(const std::string& text, int cx, int cy, int scale, Rgb colour, bool bold = false);

private:
    Image image_;
};

}  // namespace rankclip
