// report/svg.h
// defines: Svg, an SVG document written as text (rectangles, lines, polylines, circles, text,
// groups, clip paths), and what it needs: Box (a box in user units), Colour, xml_escape, the
// number format of coordinates, and text_width, an estimate of a string's width in a sans-serif
// font (the charts lay out from it; the viewer draws the real glyphs, crisp at any zoom).
// Coordinates are SVG user units (1 = one CSS pixel at 100%), y grows down.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rankclip {

// [x, x + w) x [y, y + h).
struct Box {
    double x = 0, y = 0, w = 0, h = 0;
    double right() const { return x + w; }
    double bottom() const { return y + h; }
    bool contains(double px, double py) const { return px >= x && py >= y && px < right() && py < bottom(); }
    bool overlaps(const Box& o) const { return x < o.right() && o.x < right() && y < o.bottom() && o.y < bottom(); }
};

struct Colour {
    uint8_t r = 0, g = 0, b = 0;
    std::string hex() const;   // "#1f64c8"
};

struct SvgPoint {
    double x = 0, y = 0;
};

enum class TextAnchor { Start, Middle, End };

// & < > " ' as entities: safe in text and in attribute values.
std::string xml_escape(const std::string& text);

// A coordinate with at most two decimals and no trailing zeros: 12.5, 3, -0.25.
std::string svg_number(double v);

// Estimated advance width of `text` at font size `size` (a DejaVu/Helvetica-like sans-serif:
// per-character classes, a little generous so estimated text does not overrun its space).
double text_width(const std::string& text, double size, bool bold = false);

class Svg {
public:
    // Opens the document: <?xml ...?> and <svg> with its size, font and a white background.
    Svg(double width, double height);

    void rect(const Box& b, Colour fill, double fill_opacity = 1.0);
    void rect_outline(const Box& b, Colour stroke, double stroke_width = 1.0);
    void line(double x1, double y1, double x2, double y2, Colour stroke, double width = 1.0);
    // Non-finite points break the line into pieces; pieces of one point draw nothing.
    // `css_class` (may be empty) names the element(s) for readers of the file.
    void polyline(const std::vector<SvgPoint>& points, Colour stroke, double width, double opacity = 1.0,
                  const std::string& css_class = "");
    void circle(double cx, double cy, double r, Colour fill, Colour stroke, double stroke_width,
                const std::string& css_class = "");
    // A filled polygon without outline (a band between two curves); nothing when any point is
    // not finite or there are fewer than 3.
    void polygon(const std::vector<SvgPoint>& points, Colour fill, double fill_opacity,
                 const std::string& css_class = "");
    // Text with its baseline at y; x is the start, middle or end per anchor. rotate: -90 turns it to
    // read bottom to top around (x, y).
    void text(double x, double y, const std::string& text, double size, Colour fill,
              TextAnchor anchor = TextAnchor::Start, bool bold = false, double rotate = 0);

    // A clip path named id (unique in the document) for the box.
    void clip_path(const std::string& id, const Box& b);
    // <g> ... </g>: translated by (dx, dy), clipped to clip_id when not empty, classed when not empty.
    void begin_group(double dx, double dy, const std::string& clip_id = "", const std::string& css_class = "");
    void end_group();

    // The document, closed. The Svg can not be added to afterwards.
    std::string finish();

private:
    std::string out_;
    int open_groups_ = 0;
    bool finished_ = false;
};

// Writes text to path (an Error naming the path when it cannot).
void write_text_file(const std::string& path, const std::string& text);

}  // namespace rankclip
