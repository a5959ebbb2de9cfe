// train/bitmap_font.h
// defines: the plots' text renderer: a 5x7 bitmap font (printable ASCII, our own glyph table,
// lower case with 2-row descenders) turned into anti-aliased coverage masks at any integer
// scale (render_text, text_width).
// Why a bitmap font: the plots must be readable without a font library or a TrueType file.
// Plain pixel-doubling of a 5x7 font gives blocky staircases on diagonals, so glyphs are first
// enlarged 4x with the EPX (scale2x) rule twice, which rounds diagonals, and then box-filtered to
// the requested scale, which gives grey edge pixels (anti-aliasing).
#pragma once
#include <string>
#include <vector>

namespace rankclip {

// Font units (one unit = `scale` pixels): glyphs are at most 5 wide; capitals and digits are 7
// tall (rows 0..6, row 6 sits on the baseline); descenders (g j p q y , ;) use rows 7..8.
constexpr int kFontCapHeight = 7;
constexpr int kFontCellHeight = 9;   // cap height + descender
constexpr int kFontLetterSpacing = 1;
constexpr int kFontSpaceWidth = 3;

// A coverage mask: coverage[y * width + x] in [0, 1]. Row 0 is the top of the text cell.
struct TextMask {
    int width = 0, height = 0;
    std::vector<float> coverage;
    float at(int x, int y) const { return coverage[size_t(y) * width + x]; }
};

// One line of text (newlines are not special; bytes outside printable ASCII draw as '?').
// Glyphs are proportional: each glyph's empty columns are trimmed and one unit of space follows.
// height = kFontCellHeight * scale; bold thickens strokes by one pixel to the right.
TextMask render_text(const std::string& text, int scale, bool bold = false);

// The width render_text would give, without rendering.
int text_width(const std::string& text, int scale, bool bold = false);

// Whether the glyph table has a drawing for c (printable ASCII 32..126).
bool font_has_glyph(char c);

}  // namespace rankclip
