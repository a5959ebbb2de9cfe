// tests/test_plot.cpp
// defines: tests of the training plots: the bitmap font, nice ticks and tick labels, reading
// metrics.jsonl (malformed lines, empty files, runs in progress), the canvas's anti-aliased
// lines, and whole charts written as PNG and decoded back: their size, the curve colours inside
// the plot area, the legend's swatches, ink in the title, one file per chart.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "data/image.h"
#include "test_util.h"
#include "train/bitmap_font.h"
#include "train/plot.h"
#include "train/plot_axis.h"
#include "train/plot_canvas.h"
#include "train/metrics_log.h"

namespace rankclip::test {
namespace {

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// A small RankCLIP-like run: 60 train lines (loss falling, noisy), 3 evaluations.
std::string sample_metrics() {
    std::string s = "{\"type\":\"config\",\"loss\":\"rankclip\"}\n";
    for (int i = 0; i <= 60; i++) {
        const int step = i * 10;
        const double noise = 0.05 * std::sin(i * 2.3);
        s += str_cat("{\"type\":\"train\",\"step\":", step, ",\"epoch\":", step / 100.0,
                     ",\"loss\":", 3.0 * std::exp(-step / 250.0) + 0.3 + noise,
                     ",\"contrastive\":", 2.8 * std::exp(-step / 250.0) + 0.25 + noise,
                     ",\"rank_cross\":", 0.1 * std::exp(-step / 300.0) + 0.02,
                     ",\"lr\":", 5e-4 * std::min(1.0, step / 100.0), ",\"logit_scale\":", 14.3 + step * 0.01,
                     ",\"time_s\":", step * 0.5, "}\n");
        if (step % 200 == 0 && step > 0)
            s += str_cat("{\"type\":\"eval\",\"step\":", step, ",\"zeroshot/synthetic-shape/top1\":", 0.2 + step / 1000.0,
                         ",\"retrieval/i2t/R@1\":", 0.1 + step / 2000.0, "}\n");
    }
    return s;
}

int64_t count_colour(const Image& img, const Rect& r, Rgb c) {
    int64_t n = 0;
    for (int y = std::max(r.y, 0); y < std::min(r.bottom(), img.height); y++)
        for (int x = std::max(r.x, 0); x < std::min(r.right(), img.width); x++) {
            const uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
            n += p[0] == c.r && p[1] == c.g && p[2] == c.b;
        }
    return n;
}

int64_t count_dark(const Image& img, const Rect& r) {
    int64_t n = 0;
    for (int y = std::max(r.y, 0); y < std::min(r.bottom(), img.height); y++)
        for (int x = std::max(r.x, 0); x < std::min(r.right(), img.width); x++) {
            const uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
            n += p[0] < 100 && p[1] < 100 && p[2] < 100;
        }
    return n;
}

TEST(PlotFont, EveryPrintableCharacterHasAGlyph) {
    for (int c = 32; c < 127; c++) EXPECT_TRUE(font_has_glyph(char(c))) << "'" << char(c) << "'";
    EXPECT_FALSE(font_has_glyph('\n'));
    EXPECT_EQ(text_width("", 2), 0);
}

TEST(PlotFont, GlyphsAreDistinctProportionalAndAntiAliased) {
    // Every printable glyph except space has ink, and no two glyphs draw the same mask.
    std::set<std::pair<int, std::vector<float>>> masks;
    for (int c = 33; c < 127; c++) {
        const TextMask m = render_text(std::string(1, char(c)), 2);
        float ink = 0;
        for (float v : m.coverage) ink += v;
        EXPECT_GT(ink, 1.0f) << "'" << char(c) << "'";
        EXPECT_TRUE(masks.insert({m.width, m.coverage}).second) << "'" << char(c) << "' repeats a glyph";
    }
    EXPECT_LT(text_width("iii", 2), text_width("MMM", 2));           // proportional
    EXPECT_EQ(text_width("M", 4), 2 * text_width("M", 2));          // scales linearly
    const TextMask a = render_text("A", 2);
    EXPECT_EQ(a.height, kFontCellHeight * 2);
    bool partial = false;                                             // grey edge pixels
    for (float v : a.coverage) partial = partial || (v > 0.05f && v < 0.95f);
    EXPECT_TRUE(partial);
    EXPECT_EQ(render_text("\x01", 2).coverage, render_text("?", 2).coverage);   // unknown -> '?'
}

TEST(PlotAxis, NiceTicks) {
    EXPECT_EQ(nice_ticks(0, 1, 6), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
    EXPECT_DOUBLE_EQ(nice_step(0.13, 0.87, 5), 0.2);
    const std::vector<double> t = nice_ticks(-3.3, 17.1, 6);   // step 5: -0 ... 15
    ASSERT_EQ(t.size(), 4u);
    EXPECT_DOUBLE_EQ(t[0], 0.0);
    EXPECT_DOUBLE_EQ(t[3], 15.0);
    EXPECT_FALSE(std::signbit(t[0]));
    for (double lo : {1e-7, 0.3, 42.0, 1e6})
        for (int n : {2, 5, 9}) {
            const std::vector<double> ticks = nice_ticks(lo, lo * 3.7, n);
            EXPECT_LE(int(ticks.size()), n);
            EXPECT_GE(ticks.size(), 1u);
            const double step = nice_step(lo, lo * 3.7, n);
            const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
            EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-9 || std::fabs(mantissa - 2) < 1e-9 ||
                        std::fabs(mantissa - 5) < 1e-9) << step;
        }
    EXPECT_EQ(log_ticks(0.008, 6, 8), (std::vector<double>{0.01, 0.1, 1}));
    EXPECT_EQ(log_ticks(0.3, 30, 8), (std::vector<double>{0.5, 1, 2, 5, 10, 20}));
    EXPECT_EQ(log_ticks(1e-9, 1e9, 5).size(), 5u);   // every 4th decade at most
}

TEST(PlotAxis, TickLabels) {
    EXPECT_EQ(tick_labels({0, 1e-4, 2e-4, 3e-4}, 1e-4), (std::vector<std::string>{"0", "1e-4", "2e-4", "3e-4"}));
    EXPECT_EQ(tick_labels({5e-5, 1e-4, 1.5e-4}, 5e-5), (std::vector<std::string>{"5e-5", "1e-4", "1.5e-4"}));
    EXPECT_EQ(tick_labels({0, 20000, 40000}, 20000), (std::vector<std::string>{"0", "20k", "40k"}));
    EXPECT_EQ(tick_labels({0, 500000, 1000000, 1500000}, 500000), (std::vector<std::string>{"0", "0.5M", "1.0M", "1.5M"}));
    EXPECT_EQ(tick_labels({0.05, 0.1, 0.15}, 0.05), (std::vector<std::string>{"0.05", "0.10", "0.15"}));
    EXPECT_EQ(tick_labels({-10, 0, 10}, 10), (std::vector<std::string>{"-10", "0", "10"}));
    EXPECT_EQ(log_tick_label(0.05), "0.05");
    EXPECT_EQ(log_tick_label(2), "2");
    EXPECT_EQ(log_tick_label(1e-5), "1e-5");
    const PlotAxis flat = make_axis(3, 3, false, 5);   // a flat line sits in the middle
    EXPECT_LT(flat.lo, 3);
    EXPECT_GT(flat.hi, 3);
    EXPECT_NEAR((3 - flat.lo) / (flat.hi - flat.lo), 0.5, 1e-9);
}

TEST(PlotMetrics, ReadsTrainAndEvalSeries) {
    TempDir dir("plot");
    write_text(dir.file("metrics.jsonl"),
               "{\"type\":\"train\",\"step\":0,\"loss\":4.0,\"lr\":0,\"note\":\"warmup\"}\n"
               "\n"
               "{\"step\":10,\"loss\":3.5,\"contrastive\":3.4,\"flag\":true,\"gone\":NaN}\n"   // no type: train
               "{\"type\":\"train\",\"loss\":9.9}\n"                                          // no step: skipped
               "{\"type\":\"eval\",\"step\":10,\"epoch\":1,\"zeroshot/x/top1\":0.25}\n");
    const RunMetrics run = read_metrics_jsonl(metrics_path_of(dir.path));
    EXPECT_EQ(run.train_lines, 2);
    EXPECT_EQ(run.eval_lines, 1);
    EXPECT_EQ(run.skipped_lines, 1);
    ASSERT_NE(run.find("train", "loss"), nullptr);
    EXPECT_EQ(run.find("train", "loss")->values, (std::vector<double>{4.0, 3.5}));
    EXPECT_EQ(run.find("train", "contrastive")->steps, (std::vector<double>{10}));
    EXPECT_EQ(run.find("train", "note"), nullptr);    // strings are not series
    EXPECT_EQ(run.find("train", "flag"), nullptr);
    EXPECT_EQ(run.find("train", "gone"), nullptr);    // NaN only: no points
    EXPECT_EQ(run.find("eval", "epoch"), nullptr);
    EXPECT_NE(run.find_any("zeroshot/x/top1"), nullptr);
    EXPECT_EQ(run.max_step, 10);
}

TEST(PlotMetrics, MalformedAndEmptyFilesAreClearErrors) {
    TempDir dir("plot");
    const std::string path = dir.file("metrics.jsonl");
    write_text(path, "{\"step\":0,\"loss\":1}\n{\"step\":1,\"loss\":}\n{\"step\":2,\"loss\":1}\n");
    std::string e = error_of([&] { read_metrics_jsonl(path); });
    EXPECT_NE(e.find(path + ":2:"), std::string::npos) << e;
    write_text(path, "{\"step\":0,\"loss\":1}\n[1, 2]\n");
    e = error_of([&] { read_metrics_jsonl(path); });
    EXPECT_NE(e.find(path + ":2: expected a JSON object"), std::string::npos) << e;
    write_text(path, "");
    e = error_of([&] { read_metrics_jsonl(path); });
    EXPECT_NE(e.find("no values to plot"), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;
    e = error_of([&] { plot_run(dir.path); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    e = error_of([&] { read_metrics_jsonl(dir.file("missing.jsonl")); });
    EXPECT_NE(e.find("cannot open " + dir.file("missing.jsonl")), std::string::npos) << e;
    // The trainer is still writing the last line: it is left out, not an error.
    write_text(path, "{\"step\":0,\"loss\":1}\n{\"step\":1,\"lo");
    const RunMetrics run = read_metrics_jsonl(path);
    EXPECT_TRUE(run.truncated_last_line);
    EXPECT_EQ(run.train_lines, 1);
}

TEST(PlotCanvas, ThickAntiAliasedLines) {
    PlotCanvas canvas(40, 40, {255, 255, 255});
    const Rgb red{200, 0, 0};
    canvas.draw_polyline({{5, 5}, {35, 25}}, red, 2.5f, 1.0f, {0, 0, 40, 40});
    int full = 0, partial = 0;
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++) {
            const Rgb p = canvas.pixel(x, y);
            if (p.r == red.r && p.g == red.g && p.b == red.b) full++;
            else if (p.g < 255) partial++;
        }
    EXPECT_GT(full, 30 * 2 - 10);   // at least ~2 px wide over its ~36-px length
    EXPECT_GT(partial, 20);         // grey edges: anti-aliased
    // Clipped: nothing outside the clip box; non-finite points break the line.
    PlotCanvas clipped(40, 40, {255, 255, 255});
    clipped.draw_polyline({{-1000, 20}, {1000, 20}, {NAN, 0}, {20, -500}, {20, 500}}, red, 2, 1, {10, 10, 20, 20});
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++)
            if (!Rect{10, 10, 20, 20}.contains(x, y)) {
                EXPECT_EQ(clipped.pixel(x, y).g, 255) << x << "," << y;
            }
    EXPECT_EQ(clipped.pixel(15, 20).g, 0);
    EXPECT_EQ(clipped.pixel(20, 15).g, 0);
}

TEST(Plot, PanelHasCurvesLegendAndTitle) {
    PlotPanel panel;
    panel.title = "Training loss";
    panel.y_label = "loss";
    for (int k = 0; k < 3; k++) {
        PlotSeries s;
        s.label = "series " + std::to_string(k);
        for (int i = 0; i < 50; i++) s.x.push_back(i), s.y.push_back(k + std::sin(i * 0.2));
        panel.series.push_back(s);
    }
    const PlotStyle style;
    const RenderedPanel r = render_panel(panel, style);
    EXPECT_EQ(r.image.width, style.width);
    EXPECT_EQ(r.image.height, style.height);
    ASSERT_GT(r.legend.w, 0);
    for (int k = 0; k < 3; k++) {
        const Rgb c = plot_colour(k);
        EXPECT_GT(count_colour(r.image, r.plot_area, c) - count_colour(r.image, r.legend, c), 200)
            << "curve " << k << " missing from the plot area";
        EXPECT_GT(count_colour(r.image, r.legend, c), 10) << "legend swatch " << k << " missing";
    }
    EXPECT_GT(count_dark(r.image, r.title), 40);             // the title's letters
    EXPECT_EQ(count_dark(r.image, {0, 0, r.image.width, 2}), 0);   // nothing drawn over the top edge
    // Colours of series never come from the grid: no palette colour is grey.
    for (int k = 0; k < kPlotPaletteSize; k++) {
        const Rgb c = plot_colour(k);
        EXPECT_GT(std::max({c.r, c.g, c.b}) - std::min({c.r, c.g, c.b}), 60) << k;
    }
}

TEST(Plot, CrowdedLegendMovesBelowTheAxes) {
    PlotPanel panel;
    panel.title = "Evaluation";
    for (int k = 0; k < 8; k++) {   // lines across the whole area: every corner is taken
        PlotSeries s;
        s.label = "zeroshot/some-long-task-name/top" + std::to_string(k);
        s.markers = true;
        for (int i = 0; i <= 8; i++) s.x.push_back(i * 100), s.y.push_back(k * 0.1 + (i % 2) * 0.15);
        panel.series.push_back(s);
    }
    const RenderedPanel r = render_panel(panel);
    ASSERT_GT(r.legend.w, 0);
    EXPECT_GE(r.legend.y, r.plot_area.bottom());
    EXPECT_LE(r.legend.bottom(), r.image.height);
    for (int k = 0; k < 8; k++) EXPECT_GT(count_colour(r.image, r.legend, plot_colour(k)), 5) << k;
}

TEST(Plot, PlotRunWritesGridAndPanels) {
    TempDir dir("plot");
    write_text(dir.file("metrics.jsonl"), sample_metrics());
    const std::vector<std::string> written = plot_run(dir.path);
    ASSERT_GE(written.size(), 5u);
    EXPECT_EQ(written[0], dir.file("plots.png"));
    const RunMetrics run = read_metrics_jsonl(dir.file("metrics.jsonl"));
    const std::vector<PlotPanel> panels = run_panels(run);
    std::vector<std::string> names;
    for (const PlotPanel& p : panels) names.push_back(p.name);
    EXPECT_EQ(names, (std::vector<std::string>{"loss", "lr", "logit_scale", "eval_zeroshot", "eval_retrieval"}));
    EXPECT_EQ(panels[0].series.size(), 3u);   // loss, contrastive, rank_cross; time_s is no chart
    for (const std::string& path : written) EXPECT_TRUE(path_exists(path)) << path;

    const Image grid = decode_image_file(dir.file("plots.png"));
    const PlotStyle style;
    EXPECT_EQ(grid.width, 2 * style.width);
    EXPECT_GT(grid.height, 3 * style.height);   // 5 panels: 3 rows, plus the title bar
    EXPECT_LT(grid.height, 4 * style.height);

    // The loss chart on disk is exactly what render_panel draws; look inside its boxes.
    const Image loss = decode_image_file(dir.file("plot_loss.png"));
    const RenderedPanel expected = render_panel(panels[0], style);
    ASSERT_EQ(loss.width, expected.image.width);
    ASSERT_EQ(loss.height, expected.image.height);
    EXPECT_TRUE(loss.rgb == expected.image.rgb);
    for (int k = 0; k < 3; k++) {
        EXPECT_GT(count_colour(loss, expected.plot_area, plot_colour(k)), 100) << "curve " << k;
        EXPECT_GT(count_colour(loss, expected.legend, plot_colour(k)), 10) << "swatch " << k;
    }
    EXPECT_GT(count_dark(loss, expected.title), 40);
    EXPECT_TRUE(path_exists(dir.file("plot_eval_zeroshot.png")));

    // --out: the grid where asked, the panels beside it with its stem.
    PlotRunOptions options;
    options.out_png = dir.file("report.png");
    const std::vector<std::string> again = plot_run(dir.file("metrics.jsonl"), options);
    EXPECT_EQ(again[0], dir.file("report.png"));
    EXPECT_EQ(again[1], dir.file("report_loss.png"));
}

TEST(Plot, CompareRuns) {
    TempDir a("plot_a"), b("plot_b");
    write_text(a.file("metrics.jsonl"), sample_metrics());
    write_text(b.file("metrics.jsonl"),
               "{\"type\":\"train\",\"step\":0,\"loss\":5,\"contrastive\":5}\n"
               "{\"type\":\"train\",\"step\":300,\"loss\":2,\"contrastive\":2}\n"
               "{\"type\":\"eval\",\"step\":300,\"zeroshot/synthetic-shape/top1\":0.9}\n");
    const std::string out = a.file("compare.png");
    plot_compare({a.path, b.path}, {"clip", "rankclip"}, {"contrastive"}, out, "CLIP vs RankCLIP");
    const Image img = decode_image_file(out);
    EXPECT_EQ(img.width, PlotStyle{}.width);
    EXPECT_GT(count_colour(img, {0, 0, img.width, img.height}, plot_colour(0)), 100);
    EXPECT_GT(count_colour(img, {0, 0, img.width, img.height}, plot_colour(1)), 100);
    // Several keys: a grid, one panel per key, eval keys found too.
    plot_compare({a.path, b.path}, {}, {"contrastive", "zeroshot/synthetic-shape/top1"}, out);
    EXPECT_EQ(decode_image_file(out).width, 2 * PlotStyle{}.width);
    const std::string e = error_of([&] { plot_compare({a.path, b.path}, {}, {"nope"}, out); });
    EXPECT_NE(e.find("no run has the key 'nope'"), std::string::npos) << e;
    EXPECT_NE(e.find("contrastive"), std::string::npos) << e;   // lists what there is
    EXPECT_NE(error_of([&] { plot_compare({a.path, b.path}, {"one"}, {"loss"}, out); }), "");
}

}  // namespace
}  // namespace rankclip::test
