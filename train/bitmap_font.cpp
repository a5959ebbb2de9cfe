// train/bitmap_font.cpp
// defines: the glyph table of the plots' 5x7 font (drawn for this project) and render_text,
// which enlarges glyphs with EPX twice (4x, rounded diagonals) and box-filters them to the
// requested scale (anti-aliased edges).
#include "train/bitmap_font.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/error.h"

namespace rankclip {

namespace {

// One glyph: rows separated by spaces, '#' ink, '.' paper. 7 rows, or 9 for glyphs with a
// descender. Rows are 5 columns wide; empty columns are trimmed when the glyph is set.
struct GlyphRows {
    char c;
    const char* rows;
};

const GlyphRows kGlyphs[] = {
    {' ', "..... ..... ..... ..... ..... ..... ....."},
    {'!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."},
    {'"', ".#.#. .#.#. .#.#. ..... ..... ..... ....."},
    {'#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."},
    {'$', "..#.. .#### #.#.. .###. ..#.# ####. ..#.."},
    {'%', "##... ##..# ...#. ..#.. .#... #..## ...##"},
    {'&', ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#"},
    {'\'', "..#.. ..#.. .#... ..... ..... ..... ....."},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."},
    {'*', "..... ..#.. #.#.# .###. #.#.# ..#.. ....."},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ....."},
    {',', "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#..."},
    {'-', "..... ..... ..... .###. ..... ..... ....."},
    {'.', "..... ..... ..... ..... ..... .##.. .##.."},
    {'/', "....# ....# ...#. ..#.. .#... #.... #...."},
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... #####"},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."},
    {'5', "##### #.... ####. ....# ....# #...# .###."},
    {'6', "..##. .#... #.... ####. #...# #...# .###."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#..."},
    {'8', ".###. #...# #...# .###. #...# #...# .###."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.."},
    {':', "..... .##.. .##.. ..... .##.. .##.. ....."},
    {';', "..... ..... .##.. .##.. ..... .##.. .##.. ..#.. .#..."},
    {'<', "...#. ..#.. .#... #.... .#... ..#.. ...#."},
    {'=', "..... ..... ##### ..... ##### ..... ....."},
    {'>', ".#... ..#.. ...#. ....# ...#. ..#.. .#..."},
    {'?', ".###. #...# ....# ...#. ..#.. ..... ..#.."},
    {'@', ".###. #...# #.### #.#.# #.### #.... .####"},
    {'A', ".###. #...# #...# ##### #...# #...# #...#"},
    {'B', "####. #...# #...# ####. #...# #...# ####."},
    {'C', ".###. #...# #.... #.... #.... #...# .###."},
    {'D', "####. #...# #...# #...# #...# #...# ####."},
    {'E', "##### #.... #.... ####. #.... #.... #####"},
    {'F', "##### #.... #.... ####. #.... #.... #...."},
    {'G', ".###. #...# #.... #.### #...# #...# .####"},
    {'H', "#...# #...# #...# ##### #...# #...# #...#"},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"},
    {'L', "#.... #.... #.... #.... #.... #.... #####"},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...#"},
    {'O', ".###. #...# #...# #...# #...# #...# .###."},
    {'P', "####. #...# #...# ####. #.... #.... #...."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...#"},
    {'S', ".#### #.... #.... .###. ....# ....# ####."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
    {'U', "#...# #...# #...# #...# #...# #...# .###."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... #####"},
    {'[', ".###. .#... .#... .#... .#... .#... .###."},
    {'\\', "#.... #.... .#... ..#.. ...#. ....# ....#"},
    {']', ".###. ...#. ...#. ...#. ...#. ...#. .###."},
    {'^', "..#.. .#.#. #...# ..... ..... ..... ....."},
    {'_', "..... ..... ..... ..... ..... ..... ..... ##### ....."},
    {'`', ".#... ..#.. ..... ..... ..... ..... ....."},
    {'a', "..... ..... .###. ....# .#### #...# .####"},
    {'b', "#.... #.... ####. #...# #...# #...# ####."},
    {'c', "..... ..... .###. #.... #.... #...# .###."},
    {'d', "....# ....# .#### #...# #...# #...# .####"},
    {'e', "..... ..... .###. #...# ##### #.... .###."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#..."},
    {'g', "..... ..... .#### #...# #...# .#### ....# #...# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...#"},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."},
    {'j', "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#."},
    {'l', ".#... .#... .#... .#... .#... .#... ..#.."},   // a hook, so "lr" never reads "1r"
    {'m', "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"},
    {'n', "..... ..... #.##. ##..# #...# #...# #...#"},
    {'o', "..... ..... .###. #...# #...# #...# .###."},
    {'p', "..... ..... ####. #...# #...# #...# ####. #.... #...."},
    {'q', "..... ..... .#### #...# #...# #...# .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #...."},
    {'s', "..... ..... .#### #.... .###. ....# ####."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##."},
    {'u', "..... ..... #...# #...# #...# #..## .##.#"},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...#"},
    {'y', "..... ..... #...# #...# #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... #####"},
    {'{', "...## ..#.. ..#.. .#... ..#.. ..#.. ...##"},
    {'|', "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
    {'}', "##... ..#.. ..#.. ...#. ..#.. ..#.. ##..."},
    {'~', "..... ..... .#... #.#.# ...#. ..... ....."},
};

constexpr int kGlyphWidth = 5;
constexpr int kSuper = 4;   // glyphs are enlarged 4x (EPX twice) before filtering to the scale

// A glyph as a binary bitmap, its ink columns trimmed: width w (0 for space), kFontCellHeight rows.
struct Bitmap {
    int width = 0, height = 0;
    std::vector<uint8_t> ink;
    bool at(int x, int y) const {   // outside is paper
        return x >= 0 && y >= 0 && x < width && y < height && ink[size_t(y) * width + x];
    }
};

Bitmap parse_glyph(const GlyphRows& g) {
    std::vector<std::string> rows;
    std::string row;
    for (const char* p = g.rows;; p++) {
        if (*p == ' ' || *p == '\0') {
            RC_CHECK(row.size() == size_t(kGlyphWidth), "bitmap_font: glyph '", g.c, "' has a row of ",
                     row.size(), " columns, expected ", kGlyphWidth);
            rows.push_back(row);
            row.clear();
            if (*p == '\0') break;
        } else {
            RC_CHECK(*p == '#' || *p == '.', "bitmap_font: glyph '", g.c, "' has the character '", *p, "'");
            row += *p;
        }
    }
    RC_CHECK(rows.size() == size_t(kFontCapHeight) || rows.size() == size_t(kFontCellHeight),
             "bitmap_font: glyph '", g.c, "' has ", rows.size(), " rows, expected 7 or 9");
    int first = kGlyphWidth, last = -1;
    for (const std::string& r : rows)
        for (int x = 0; x < kGlyphWidth; x++)
            if (r[x] == '#') first = std::min(first, x), last = std::max(last, x);
    Bitmap b;
    b.height = kFontCellHeight;
    if (last < 0) return b;   // space: no ink, width comes from kFontSpaceWidth
    b.width = last - first + 1;
    b.ink.assign(size_t(b.width) * b.height, 0);
    for (size_t y = 0; y < rows.size(); y++)
        for (int x = 0; x < b.width; x++) b.ink[y * b.width + x] = rows[y][first + x] == '#';
    return b;
}

// EPX / scale2x, one-sided: every pixel becomes 2x2; a paper pixel's corner takes ink when its
// two neighbours on that side are ink and the opposite two are not, which fills staircases into
// 45-degree edges. Full EPX would also shave ink corners, and then D reads as O.
Bitmap epx(const Bitmap& in) {
    Bitmap out;
    out.width = in.width * 2;
    out.height = in.height * 2;
    out.ink.assign(size_t(out.width) * out.height, 0);
    for (int y = 0; y < in.height; y++)
        for (int x = 0; x < in.width; x++) {
            const bool p = in.at(x, y), up = in.at(x, y - 1), right = in.at(x + 1, y);
            const bool left = in.at(x - 1, y), down = in.at(x, y + 1);
            bool c[4] = {p, p, p, p};   // top-left, top-right, bottom-left, bottom-right
            if (!p) {   // only paper gains ink: square corners (D, E, B) stay square, unlike O
                if (left == up && left != down && up != right) c[0] = up;
                if (up == right && up != left && right != down) c[1] = right;
                if (down == left && down != right && left != up) c[2] = left;
                if (right == down && right != up && down != left) c[3] = down;
            }
            for (int k = 0; k < 4; k++) out.ink[size_t(2 * y + k / 2) * out.width + 2 * x + k % 2] = c[k];
        }
    return out;
}

struct Font {
    std::array<Bitmap, 128> glyphs;        // trimmed 1x bitmaps
    std::array<Bitmap, 128> supersampled;  // the same, enlarged kSuper times with EPX
    std::array<bool, 128> present{};
    Font() {
        for (const GlyphRows& g : kGlyphs) {
            const int c = static_cast<unsigned char>(g.c);
            RC_CHECK(c < 128 && !present[c], "bitmap_font: glyph '", g.c, "' defined twice");
            glyphs[c] = parse_glyph(g);
            supersampled[c] = epx(epx(glyphs[c]));
            present[c] = true;
        }
    }
};

const Font& font() {
    static const Font f;   // thread-safe initialisation (C++11 magic statics)
    return f;
}

int glyph_index(char ch) {
    const int c = static_cast<unsigned char>(ch);
    return c < 128 && font().present[c] ? c : '?';
}

// Advance of one glyph in font units (before the letter spacing).
int glyph_advance(int c) {
    const Bitmap& g = font().glyphs[c];
    return g.width == 0 ? kFontSpaceWidth : g.width;
}

}  // namespace

bool font_has_glyph(char c) {
    const int i = static_cast<unsigned char>(c);
    return i < 128 && font().present[i];
}

int text_width(const std::string& text, int scale, bool bold) {
    RC_CHECK(scale >= 1, "text_width: scale must be >= 1, got ", scale);
    if (text.empty()) return 0;
    int units = 0;
    for (char ch : text) units += glyph_advance(glyph_index(ch)) + kFontLetterSpacing;
    units -= kFontLetterSpacing;   // no spacing after the last glyph
    return units * scale + (bold ? 1 : 0);
}

TextMask render_text(const std::string& text, int scale, bool bold) {
    RC_CHECK(scale >= 1, "render_text: scale must be >= 1, got ", scale);
    TextMask mask;
    mask.width = text_width(text, scale, bold);
    mask.height = kFontCellHeight * scale;
    mask.coverage.assign(size_t(mask.width) * mask.height, 0.0f);
    // Each output pixel averages a 4x4 grid of samples of the 4x glyph: exact area coverage
    // when scale divides 4 evenly or is a multiple of it, a close estimate otherwise.
    constexpr int kSamples = 4;
    int pen = 0;   // in font units
    for (char ch : text) {
        const int c = glyph_index(ch);
        const Bitmap& big = font().supersampled[c];
        const int gw = font().glyphs[c].width * scale, gh = mask.height;
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                int hits = 0;
                for (int sy = 0; sy < kSamples; sy++)
                    for (int sx = 0; sx < kSamples; sx++) {
                        // sample centre in font units, then in 4x bitmap pixels
                        const double u = (x + (sx + 0.5) / kSamples) / scale;
                        const double v = (y + (sy + 0.5) / kSamples) / scale;
                        hits += big.at(int(u * kSuper), int(v * kSuper));
                    }
                mask.coverage[size_t(y) * mask.width + pen * scale + x] = float(hits) / (kSamples * kSamples);
            }
        pen += glyph_advance(c) + kFontLetterSpacing;
    }
    if (bold) {   // smear one pixel to the right: max of a pixel and its left neighbour
        for (int y = 0; y < mask.height; y++)
            for (int x = mask.width - 1; x > 0; x--) {
                float& here = mask.coverage[size_t(y) * mask.width + x];
                here = std::max(here, mask.coverage[size_t(y) * mask.width + x - 1]);
            }
    }
    return mask;
}

}  // namespace rankclip
