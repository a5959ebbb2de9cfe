// tests/test_plot.cpp
// defines: tests of the training charts: nice ticks and tick labels, reading metrics.jsonl
// (malformed lines, empty files, runs in progress), the SVG writer (escaping, numbers, broken
// lines) and whole charts as SVG documents: well-formed XML, each series' points where its axes
// map them, text escaped, NaN/inf points left out, empty and one-point series, log axes, the
// legend's place, and the files plot_run and plot_compare write.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "report/plot.h"
#include "report/plot_axis.h"
#include "report/svg.h"
#include "test_util.h"
#include "train/metrics_log.h"

namespace rankclip::test {
namespace {

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
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

// ---- a small XML reader, enough to hold the SVG writer to XML's rules ----

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':'; }

// An '&' at text[i] must start one of the five entities; returns its length or 0.
size_t entity_at(const std::string& text, size_t i) {
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        if (text.compare(i, std::strlen(e), e) == 0) return std::strlen(e);
    return 0;
}

// "" when `xml` is well-formed: an optional <?xml ...?> prolog, one root element, every tag
// closed in order, attributes quoted and unique, '<' never in text or values, '&' only in entities.
std::string xml_error(const std::string& xml) {
    size_t i = 0;
    if (xml.compare(0, 5, "<?xml") == 0) {
        i = xml.find("?>");
        if (i == std::string::npos) return "unclosed prolog";
        i += 2;
    }
    std::vector<std::string> open;
    int roots = 0;
    while (i < xml.size()) {
        const char c = xml[i];
        if (c == '&') {
            const size_t n = entity_at(xml, i);
            if (!n) return str_cat("bare '&' at ", i);
            i += n;
        } else if (c == '>') {
            return str_cat("bare '>' at ", i);   // allowed by XML, but our writer always escapes it
        } else if (c != '<') {
            if (open.empty() && !std::isspace(static_cast<unsigned char>(c))) return str_cat("text outside the root at ", i);
            i++;
        } else if (xml.compare(i, 2, "</") == 0) {
            size_t j = i + 2;
            while (j < xml.size() && is_name_char(xml[j])) j++;
            const std::string name = xml.substr(i + 2, j - i - 2);
            if (open.empty() || open.back() != name) return str_cat("</", name, "> at ", i, " closes nothing open");
            if (j >= xml.size() || xml[j] != '>') return str_cat("bad end tag at ", i);
            open.pop_back();
            i = j + 1;
        } else {
            size_t j = i + 1;
            while (j < xml.size() && is_name_char(xml[j])) j++;
            const std::string name = xml.substr(i + 1, j - i - 1);
            if (name.empty()) return str_cat("'<' without a name at ", i);
            if (open.empty() && ++roots > 1) return "more than one root element";
            std::set<std::string> attributes;
            while (true) {
                while (j < xml.size() && std::isspace(static_cast<unsigned char>(xml[j]))) j++;
                if (j >= xml.size()) return str_cat("unclosed <", name, ">");
                if (xml.compare(j, 2, "/>") == 0) { j += 2; break; }
                if (xml[j] == '>') { open.push_back(name); j++; break; }
                size_t k = j;
                while (k < xml.size() && is_name_char(xml[k])) k++;
                const std::string attribute = xml.substr(j, k - j);
                if (attribute.empty() || k + 1 >= xml.size() || xml[k] != '=' || xml[k + 1] != '"')
                    return str_cat("bad attribute in <", name, "> at ", j);
                if (!attributes.insert(attribute).second) return str_cat("attribute ", attribute, " twice in <", name, ">");
                k += 2;
                while (k < xml.size() && xml[k] != '"') {
                    if (xml[k] == '<') return str_cat("'<' in the value of ", attribute);
                    if (xml[k] == '&') {
                        const size_t n = entity_at(xml, k);
                        if (!n) return str_cat("bare '&' in the value of ", attribute);
                        k += n;
                    } else {
                        k++;
                    }
                }
                if (k >= xml.size()) return str_cat("unclosed value of ", attribute);
                j = k + 1;
            }
            i = j;
        }
    }
    if (!open.empty()) return str_cat("<", open.back(), "> never closed");
    return roots == 1 ? "" : "no root element";
}

std::string xml_unescape(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        const std::pair<const char*, char> entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
                                                        {"&quot;", '"'}, {"&apos;", '\''}};
        bool matched = false;
        for (const auto& [e, ch] : entities)
            if (s.compare(i, std::strlen(e), e) == 0) {
                out += ch, i += std::strlen(e), matched = true;
                break;
            }
        if (!matched) out += s[i++];
    }
    return out;
}

using Attributes = std::map<std::string, std::string>;

// Every <tag ...> in xml with its attributes (values unescaped).
std::vector<Attributes> elements(const std::string& xml, const std::string& tag) {
    std::vector<Attributes> out;
    const std::string open = "<" + tag;
    for (size_t i = xml.find(open); i != std::string::npos; i = xml.find(open, i + 1)) {
        const size_t after = i + open.size();
        if (after < xml.size() && is_name_char(xml[after])) continue;   // <g> vs <global>
        const size_t end = xml.find('>', i);
        Attributes a;
        size_t j = after;
        while (true) {
            const size_t eq = xml.find("=\"", j);
            if (eq == std::string::npos || eq > end) break;
            size_t k = eq;
            while (k > j && is_name_char(xml[k - 1])) k--;
            const size_t close = xml.find('"', eq + 2);
            a[xml.substr(k, eq - k)] = xml_unescape(xml.substr(eq + 2, close - eq - 2));
            j = close + 1;
        }
        out.push_back(a);
    }
    return out;
}

// The contents of every <text> element, unescaped.
std::vector<std::string> texts(const std::string& xml) {
    std::vector<std::string> out;
    for (size_t i = xml.find("<text"); i != std::string::npos; i = xml.find("<text", i + 1)) {
        const size_t start = xml.find('>', i) + 1, end = xml.find("</text>", start);
        out.push_back(xml_unescape(xml.substr(start, end - start)));
    }
    return out;
}

bool has_text(const std::string& xml, const std::string& text) {
    for (const std::string& t : texts(xml))
        if (t == text) return true;
    return false;
}

// The part of a panel's SVG that draws series k (its <g class="series-k"> ... </g>).
std::string series_part(const std::string& svg, int k) {
    const std::string open = "<g class=\"series-" + std::to_string(k) + "\">";
    const size_t start = svg.find(open);
    if (start == std::string::npos) return "";
    return svg.substr(start, svg.find("</g>", start) - start);
}

std::vector<SvgPoint> parse_points(const std::string& points) {
    std::vector<SvgPoint> out;
    std::istringstream in(points);
    std::string pair;
    while (in >> pair) {
        const size_t comma = pair.find(',');
        out.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
    }
    return out;
}

// The points of series k's main line (class "line"), one polyline expected.
std::vector<SvgPoint> line_of(const std::string& svg, int k) {
    std::vector<SvgPoint> out;
    for (const Attributes& a : elements(series_part(svg, k), "polyline"))
        if (a.at("class") == "line") {
            const std::vector<SvgPoint> p = parse_points(a.at("points"));
            out.insert(out.end(), p.begin(), p.end());
        }
    return out;
}

size_t count_of(const std::string& text, const std::string& part) {
    size_t n = 0;
    for (size_t i = text.find(part); i != std::string::npos; i = text.find(part, i + 1)) n++;
    return n;
}

PlotSeries series(const std::string& label, std::vector<double> x, std::vector<double> y) {
    PlotSeries s;
    s.label = label;
    s.x = std::move(x);
    s.y = std::move(y);
    return s;
}

}  // namespace

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

TEST(Svg, EscapesNumbersAndDocuments) {
    EXPECT_EQ(xml_escape("a & b < c > \"d\" 'e'"), "a &amp; b &lt; c &gt; &quot;d&quot; &apos;e&apos;");
    EXPECT_EQ(xml_escape("plain R@1 / top-5"), "plain R@1 / top-5");
    EXPECT_EQ(svg_number(12.5), "12.5");
    EXPECT_EQ(svg_number(3.0), "3");
    EXPECT_EQ(svg_number(-0.001), "0");
    EXPECT_EQ(svg_number(0.126), "0.13");   // two decimals: a hundredth of a pixel
    EXPECT_EQ((Colour{31, 100, 200}.hex()), "#1f64c8");
    EXPECT_LT(text_width("iii", 10), text_width("MMM", 10));   // proportional estimate
    EXPECT_DOUBLE_EQ(text_width("abc", 20), 2 * text_width("abc", 10));
    EXPECT_EQ(text_width("", 10), 0);

    Svg svg(100, 50);
    svg.begin_group(10, 5, "", "a&b");
    svg.text(1, 2, "x < y & z", 10, {0, 0, 0});
    // NaN breaks the line into two pieces; a piece of one point draws nothing.
    svg.polyline({{0, 0}, {1, 1}, {NAN, 0}, {2, 2}, {3, 3}, {INFINITY, 1}, {4, 4}}, {255, 0, 0}, 1, 1, "line");
    svg.end_group();
    const std::string doc = svg.finish();
    EXPECT_EQ(xml_error(doc), "") << doc;
    EXPECT_EQ(elements(doc, "svg")[0].at("width"), "100");
    EXPECT_EQ(elements(doc, "svg")[0].at("viewBox"), "0 0 100 50");
    EXPECT_EQ(elements(doc, "g")[0].at("class"), "a&b");
    EXPECT_EQ(texts(doc), (std::vector<std::string>{"x < y & z"}));
    const std::vector<Attributes> lines = elements(doc, "polyline");
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].at("points"), "0,0 1,1");
    EXPECT_EQ(lines[1].at("points"), "2,2 3,3");

    Svg unbalanced(10, 10);
    unbalanced.begin_group(0, 0);
    EXPECT_NE(error_of([&] { unbalanced.finish(); }), "");
    EXPECT_NE(error_of([&] { unbalanced.end_group(), unbalanced.end_group(); }), "");
    // The checker itself catches what it should.
    EXPECT_NE(xml_error("<a><b></a></b>"), "");
    EXPECT_NE(xml_error("<a>x & y</a>"), "");
    EXPECT_NE(xml_error("<a t=\"<\"/>"), "");
    EXPECT_NE(xml_error("<a/><b/>"), "");
    EXPECT_EQ(xml_error("<?xml version=\"1.0\"?>\n<a t=\"&amp;\"><b/>x &lt; y</a>\n"), "");
}

TEST(Plot, SeriesPointsLandWhereTheAxesMapThem) {
    PlotPanel panel;
    panel.title = "Two series";
    panel.y_label = "value";
    panel.series.push_back(series("a", {0, 50, 100, 25}, {1, 3, 2, 1.5}));   // any x order
    panel.series.push_back(series("b", {0, 100}, {2.5, 0.5}));
    const PlotStyle style;
    const RenderedPanel r = render_panel(panel, style);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    const Attributes root = elements(r.svg, "svg")[0];
    EXPECT_EQ(root.at("width"), std::to_string(style.width));
    EXPECT_EQ(root.at("height"), std::to_string(style.height));

    const std::vector<double> xs = {0, 25, 50, 100}, ys = {1, 1.5, 3, 2};   // sorted by x
    const std::vector<SvgPoint> a = line_of(r.svg, 0);
    ASSERT_EQ(a.size(), 4u);
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_NEAR(a[i].x, r.x_axis.to_pixel(xs[i]), 0.006) << i;
        EXPECT_NEAR(a[i].y, r.y_axis.to_pixel(ys[i]), 0.006) << i;
        EXPECT_TRUE(r.plot_area.contains(a[i].x, a[i].y)) << i;
    }
    EXPECT_LT(a[2].y, a[0].y);   // larger values higher up
    EXPECT_LT(a[0].x, a[3].x);
    // The axes span the plot area and their ranges cover the data.
    EXPECT_NEAR(r.x_axis.to_pixel(r.x_axis.lo), r.plot_area.x, 1e-9);
    EXPECT_NEAR(r.x_axis.to_pixel(r.x_axis.hi), r.plot_area.right(), 1e-9);
    EXPECT_NEAR(r.y_axis.to_pixel(r.y_axis.lo), r.plot_area.bottom(), 1e-9);
    EXPECT_LE(r.y_axis.lo, 0.5);
    EXPECT_GE(r.y_axis.hi, 3);
    EXPECT_EQ(line_of(r.svg, 1).size(), 2u);
    // Colours: series k drawn in plot_colour(k).
    for (int k = 0; k < 2; k++)
        EXPECT_EQ(elements(series_part(r.svg, k), "polyline")[0].at("stroke"), plot_colour(k).hex()) << k;
    // Tick labels and axis labels are text; each tick label is one of the axis's.
    for (const std::string& l : r.y_axis.labels) EXPECT_TRUE(has_text(r.svg, l)) << l;
    for (const std::string& l : r.x_axis.labels) EXPECT_TRUE(has_text(r.svg, l)) << l;
    EXPECT_TRUE(has_text(r.svg, "Two series"));
    EXPECT_TRUE(has_text(r.svg, "step"));
    EXPECT_TRUE(has_text(r.svg, "value"));
    // The data is clipped to the plot area.
    const std::vector<Attributes> clips = elements(r.svg, "clipPath");
    ASSERT_EQ(clips.size(), 1u);
}

TEST(Plot, TextIsEscaped) {
    PlotPanel panel;
    panel.title = "loss & <acc> > 0";
    panel.x_label = "step <k>";
    panel.y_label = "a & b";
    panel.series.push_back(series("R@1 <i2t> & t2i", {0, 1}, {0, 1}));
    panel.series.push_back(series("\"quoted\" 'too'", {0, 1}, {1, 0}));
    const RenderedPanel r = render_panel(panel);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    for (const char* t : {"loss & <acc> > 0", "step <k>", "a & b", "R@1 <i2t> & t2i", "\"quoted\" 'too'"})
        EXPECT_TRUE(has_text(r.svg, t)) << t;
    EXPECT_EQ(r.svg.find("<acc>"), std::string::npos);
    EXPECT_EQ(r.svg.find("<i2t>"), std::string::npos);
    // The same in a grid title.
    const std::string grid = render_grid({panel, panel}, "run <1> & co");
    ASSERT_EQ(xml_error(grid), "");
    EXPECT_TRUE(has_text(grid, "run <1> & co"));
}

TEST(Plot, NonFinitePointsAreLeftOut) {
    PlotPanel panel;
    panel.series.push_back(series("", {0, 1, 2, 3, 4, NAN, 6}, {1, NAN, INFINITY, 2, -INFINITY, 5, 3}));
    const RenderedPanel r = render_panel(panel);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    const std::vector<SvgPoint> line = line_of(r.svg, 0);
    ASSERT_EQ(line.size(), 3u);   // x = 0, 3, 6
    EXPECT_NEAR(line[1].x, r.x_axis.to_pixel(3), 0.006);
    EXPECT_NEAR(line[1].y, r.y_axis.to_pixel(2), 0.006);
    EXPECT_LE(r.y_axis.hi, 4);   // the NaN-x point's 5 does not stretch the axis
    for (const char* bad : {"nan", "inf"}) EXPECT_EQ(r.svg.find(bad), std::string::npos) << bad;
    // A log axis also leaves out values <= 0, and falls back to linear when any exists.
    PlotPanel log_panel;
    log_panel.log_y = true;
    log_panel.series.push_back(series("", {0, 1, 2, 3}, {1, 10, 100, 1000}));
    const RenderedPanel lr = render_panel(log_panel);
    ASSERT_TRUE(lr.y_axis.log);
    const std::vector<SvgPoint> l = line_of(lr.svg, 0);
    ASSERT_EQ(l.size(), 4u);
    EXPECT_NEAR(l[0].y - l[1].y, l[1].y - l[2].y, 0.02);   // decades equally spaced
    EXPECT_NEAR(l[1].y - l[2].y, l[2].y - l[3].y, 0.02);
    log_panel.series[0].y[0] = 0;
    EXPECT_FALSE(render_panel(log_panel).y_axis.log);
}

// A band (mean ± std over seeds) is one polygon under the line: along the upper edge, back along
// the lower; it stretches the y axis; a band of the wrong length is an error naming the series.
TEST(Plot, BandsAreShadedUnderTheLine) {
    PlotPanel panel;
    PlotSeries s = series("clip", {0, 1, 2}, {1, 2, 3});
    s.band_lo = {0.5, 1.5, 2.5};
    s.band_hi = {1.5, 2.5, 9.0};
    panel.series.push_back(s);
    const RenderedPanel r = render_panel(panel);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    EXPECT_EQ(count_of(r.svg, "<polygon class=\"band\""), 1u);
    EXPECT_GE(r.y_axis.hi, 9.0);
    EXPECT_LE(r.y_axis.lo, 0.5);
    const size_t at = r.svg.find("<polygon class=\"band\" points=\"");
    ASSERT_NE(at, std::string::npos);
    const size_t begin = r.svg.find('"', r.svg.find("points=", at)) + 1;
    std::istringstream pts(r.svg.substr(begin, r.svg.find('"', begin) - begin));
    std::vector<SvgPoint> poly;
    for (std::string xy; pts >> xy;) poly.push_back({std::stod(xy.substr(0, xy.find(','))), std::stod(xy.substr(xy.find(',') + 1))});
    ASSERT_EQ(poly.size(), 6u);
    EXPECT_NEAR(poly[2].y, r.y_axis.to_pixel(9.0), 0.006);   // upper edge, last point
    EXPECT_NEAR(poly[3].y, r.y_axis.to_pixel(2.5), 0.006);   // then the lower edge, backwards
    EXPECT_NEAR(poly[5].x, r.x_axis.to_pixel(0), 0.006);
    EXPECT_LT(r.svg.find("class=\"band\""), r.svg.find("class=\"line\""));   // drawn under the line
    panel.series[0].band_hi.pop_back();
    EXPECT_NE(error_of([&] { render_panel(panel); }).find("'clip' has a band"), std::string::npos);
}

TEST(Plot, EmptyAndOnePointSeries) {
    // No series at all, and a series with no (finite) points: frame, "no data", nothing drawn.
    PlotPanel none;
    none.title = "nothing yet";
    PlotPanel empty = none;
    empty.series.push_back(series("", {}, {}));
    empty.series.push_back(series("", {1, 2}, {NAN, NAN}));
    for (const PlotPanel* p : {&none, &empty}) {
        const RenderedPanel r = render_panel(*p);
        ASSERT_EQ(xml_error(r.svg), "") << r.svg;
        EXPECT_TRUE(has_text(r.svg, "no data"));
        EXPECT_TRUE(has_text(r.svg, "nothing yet"));
        EXPECT_TRUE(elements(r.svg, "polyline").empty());
        EXPECT_TRUE(elements(r.svg, "circle").empty());
        EXPECT_EQ(r.legend.w, 0);
    }
    // One point: no line, one marker where the axes put it; the range around it is padded.
    PlotPanel one;
    one.series.push_back(series("", {7}, {0.5}));
    const RenderedPanel r = render_panel(one);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    EXPECT_FALSE(has_text(r.svg, "no data"));
    EXPECT_TRUE(elements(r.svg, "polyline").empty());
    const std::vector<Attributes> dots = elements(series_part(r.svg, 0), "circle");
    ASSERT_EQ(dots.size(), 1u);
    EXPECT_NEAR(std::stod(dots[0].at("cx")), r.x_axis.to_pixel(7), 0.006);
    EXPECT_NEAR(std::stod(dots[0].at("cy")), r.y_axis.to_pixel(0.5), 0.006);
    EXPECT_LT(r.y_axis.lo, 0.5);
    EXPECT_GT(r.y_axis.hi, 0.5);
    EXPECT_TRUE(r.plot_area.contains(std::stod(dots[0].at("cx")), std::stod(dots[0].at("cy"))));
    // A repeated x (a resumed run rewrote the step): the later value wins.
    PlotPanel again;
    again.series.push_back(series("", {0, 1, 1, 2}, {1, 5, 2, 3}));
    const RenderedPanel ra = render_panel(again);
    const std::vector<SvgPoint> l = line_of(ra.svg, 0);
    ASSERT_EQ(l.size(), 3u);
    EXPECT_NEAR(l[1].y, ra.y_axis.to_pixel(2), 0.006);
}

TEST(Plot, LegendMarkersAndSmoothing) {
    PlotPanel panel;
    panel.title = "Training loss";
    panel.smooth = true;
    for (int k = 0; k < 3; k++) {
        PlotSeries s = series("series " + std::to_string(k), {}, {});
        for (int i = 0; i < 60; i++) s.x.push_back(i), s.y.push_back(k + 0.3 * std::sin(i * 2.3));   // noisy
        panel.series.push_back(s);
    }
    panel.series[2].markers = true;
    const RenderedPanel r = render_panel(panel);
    ASSERT_EQ(xml_error(r.svg), "") << r.svg;
    ASSERT_GT(r.legend.w, 0);
    for (int k = 0; k < 3; k++) EXPECT_TRUE(has_text(r.svg, "series " + std::to_string(k))) << k;
    // Noisy curves: the raw points faint under the smoothed line.
    for (int k = 0; k < 3; k++) {
        const std::vector<Attributes> lines = elements(series_part(r.svg, k), "polyline");
        ASSERT_EQ(lines.size(), 2u) << k;
        EXPECT_EQ(lines[0].at("class"), "raw");
        EXPECT_EQ(lines[0].at("stroke-opacity"), "0.3");
        EXPECT_EQ(lines[1].at("class"), "line");
    }
    EXPECT_EQ(elements(series_part(r.svg, 2), "circle").size(), 60u);   // markers only where asked
    EXPECT_TRUE(elements(series_part(r.svg, 0), "circle").empty());
    // One unlabelled series: no legend.
    PlotPanel single;
    single.series.push_back(series("", {0, 1}, {0, 1}));
    EXPECT_EQ(render_panel(single).legend.w, 0);
    // Palette colours are never grey, so data never looks like the grid.
    for (int k = 0; k < kPlotPaletteSize; k++) {
        const Colour c = plot_colour(k);
        EXPECT_GT(std::max({c.r, c.g, c.b}) - std::min({c.r, c.g, c.b}), 60) << k;
    }
}

TEST(Plot, LegendGoesToAnEmptyCornerOrBelowTheAxes) {
    // A line rising left to right: the top-left corner is free.
    PlotPanel rising;
    rising.series.push_back(series("rising", {0, 1}, {0, 1}));
    rising.series.push_back(series("also rising", {0, 1}, {0.1, 1.1}));
    const RenderedPanel r = render_panel(rising);
    ASSERT_GT(r.legend.w, 0);
    EXPECT_TRUE(r.legend.x < r.plot_area.x + r.plot_area.w / 2 && r.legend.y < r.plot_area.y + r.plot_area.h / 2)
        << r.legend.x << "," << r.legend.y;
    // Lines across the whole area: every corner is taken, the legend moves below.
    PlotPanel panel;
    panel.title = "Evaluation";
    for (int k = 0; k < 8; k++) {
        PlotSeries s = series("zeroshot/some-long-task-name/top" + std::to_string(k), {}, {});
        s.markers = true;
        for (int i = 0; i <= 8; i++) s.x.push_back(i * 100), s.y.push_back(k * 0.1 + (i % 2) * 0.15);
        panel.series.push_back(s);
    }
    const RenderedPanel c = render_panel(panel);
    ASSERT_EQ(xml_error(c.svg), "");
    ASSERT_GT(c.legend.w, 0);
    EXPECT_GE(c.legend.y, c.plot_area.bottom());
    EXPECT_LE(c.legend.bottom(), PlotStyle{}.height);
    for (int k = 0; k < 8; k++) EXPECT_TRUE(has_text(c.svg, panel.series[k].label)) << k;
}

TEST(Plot, PlotRunWritesGridAndPanels) {
    TempDir dir("plot");
    write_text(dir.file("metrics.jsonl"), sample_metrics());
    const std::vector<std::string> written = plot_run(dir.path);
    ASSERT_GE(written.size(), 5u);
    EXPECT_EQ(written[0], dir.file("plots.svg"));
    const RunMetrics run = read_metrics_jsonl(dir.file("metrics.jsonl"));
    const std::vector<PlotPanel> panels = run_panels(run);
    std::vector<std::string> names;
    for (const PlotPanel& p : panels) names.push_back(p.name);
    EXPECT_EQ(names, (std::vector<std::string>{"loss", "lr", "logit_scale", "eval_zeroshot", "eval_retrieval"}));
    EXPECT_EQ(panels[0].series.size(), 3u);   // loss, contrastive, rank_cross; time_s is no chart
    for (const std::string& path : written) {
        EXPECT_TRUE(path_exists(path)) << path;
        EXPECT_EQ(xml_error(read_text(path)), "") << path;
    }

    const std::string grid = read_text(dir.file("plots.svg"));
    const PlotStyle style;
    const Attributes root = elements(grid, "svg")[0];
    EXPECT_EQ(std::stod(root.at("width")), 2 * style.width);
    EXPECT_GT(std::stod(root.at("height")), 3 * style.height);   // 5 panels: 3 rows, plus the title bar
    EXPECT_LT(std::stod(root.at("height")), 4 * style.height);
    EXPECT_EQ(count_of(grid, "<g class=\"panel\""), 5u);
    EXPECT_EQ(count_of(grid, "<clipPath id="), 5u);   // one per panel, ids distinct:
    for (int i = 0; i < 5; i++) EXPECT_EQ(count_of(grid, "id=\"p" + std::to_string(i) + "-plot\""), 1u) << i;
    for (const char* title : {"Training loss", "Learning rate", "Logit scale", "Evaluation: zeroshot"})
        EXPECT_TRUE(has_text(grid, title)) << title;
    EXPECT_TRUE(texts(grid)[0].find("(steps 0-600; 61 train, 3 eval lines)") != std::string::npos) << texts(grid)[0];

    // The loss chart on disk is exactly what render_panel draws.
    const RenderedPanel expected = render_panel(panels[0], style);
    EXPECT_EQ(read_text(dir.file("plot_loss.svg")), expected.svg);
    for (const char* key : {"loss", "contrastive", "rank_cross"}) EXPECT_TRUE(has_text(expected.svg, key)) << key;
    EXPECT_TRUE(path_exists(dir.file("plot_eval_zeroshot.svg")));

    // --out: the grid where asked, the panels beside it with its stem.
    PlotRunOptions options;
    options.out_svg = dir.file("report.svg");
    const std::vector<std::string> again = plot_run(dir.file("metrics.jsonl"), options);
    EXPECT_EQ(again[0], dir.file("report.svg"));
    EXPECT_EQ(again[1], dir.file("report_loss.svg"));
    options.per_panel = false;
    EXPECT_EQ(plot_run(dir.path, options).size(), 1u);
}

TEST(Plot, CompareRuns) {
    TempDir a("plot_a"), b("plot_b");
    write_text(a.file("metrics.jsonl"), sample_metrics());
    write_text(b.file("metrics.jsonl"),
               "{\"type\":\"train\",\"step\":0,\"loss\":5,\"contrastive\":5}\n"
               "{\"type\":\"train\",\"step\":300,\"loss\":2,\"contrastive\":2}\n"
               "{\"type\":\"eval\",\"step\":300,\"zeroshot/synthetic-shape/top1\":0.9}\n");
    const std::string out = a.file("compare.svg");
    EXPECT_EQ(plot_compare({a.path, b.path}, {"clip", "rankclip"}, {"contrastive"}, out, "CLIP vs RankCLIP"), out);
    const std::string svg = read_text(out);
    ASSERT_EQ(xml_error(svg), "") << svg;
    EXPECT_EQ(std::stod(elements(svg, "svg")[0].at("width")), PlotStyle{}.width);
    for (const char* t : {"CLIP vs RankCLIP", "clip", "rankclip"}) EXPECT_TRUE(has_text(svg, t)) << t;
    EXPECT_EQ(elements(series_part(svg, 0), "polyline").back().at("stroke"), plot_colour(0).hex());
    EXPECT_EQ(elements(series_part(svg, 1), "polyline").back().at("stroke"), plot_colour(1).hex());
    EXPECT_EQ(line_of(svg, 1).size(), 2u);   // run b: steps 0 and 300
    // Several keys: a grid, one panel per key, eval keys found too.
    plot_compare({a.path, b.path}, {}, {"contrastive", "zeroshot/synthetic-shape/top1"}, out);
    const std::string grid = read_text(out);
    ASSERT_EQ(xml_error(grid), "");
    EXPECT_EQ(std::stod(elements(grid, "svg")[0].at("width")), 2 * PlotStyle{}.width);
    EXPECT_EQ(count_of(grid, "<g class=\"panel\""), 2u);
    const std::string e = error_of([&] { plot_compare({a.path, b.path}, {}, {"nope"}, out); });
    EXPECT_NE(e.find("no run has the key 'nope'"), std::string::npos) << e;
    EXPECT_NE(e.find("contrastive"), std::string::npos) << e;   // lists what there is
    EXPECT_NE(error_of([&] { plot_compare({a.path, b.path}, {"one"}, {"loss"}, out); }), "");
}

// Curves over seeds: the mean at each evaluation step with a band of ± the sample std; an arm
// keeps its colour; a step only some runs have averages those.
TEST(Plot, SeedBandsAreMeanAndStd) {
    TempDir dir("plot_bands");
    auto run = [&](const std::string& name, const std::vector<std::pair<int, double>>& evals) {
        std::string text;
        for (const auto& [step, v] : evals)
            text += "{\"type\":\"eval\",\"step\":" + std::to_string(step) + ",\"epoch\":0,\"acc\":" + std::to_string(v) + "}\n";
        write_text(dir.file(name + ".jsonl"), text);
        return dir.file(name + ".jsonl");
    };
    const std::vector<ArmRuns> arms = {
        {"clip", {run("c0", {{10, 0.2}, {20, 0.4}}), run("c1", {{10, 0.4}, {20, 0.6}})}},
        {"rankclip", {run("r0", {{10, 0.3}, {20, 0.5}}), run("r1", {{10, 0.3}})}}};
    const std::string out = plot_seed_bands(arms, {{"acc", "accuracy"}}, dir.file("curves.svg"), "curves");
    const std::string svg = read_text(out);
    EXPECT_EQ(xml_error(svg), "");
    EXPECT_EQ(count_of(svg, "<polygon class=\"band\""), 2u);
    EXPECT_TRUE(has_text(svg, "accuracy"));
    EXPECT_TRUE(has_text(svg, "rankclip"));
    EXPECT_NE(error_of([&] { plot_seed_bands(arms, {{"nope", "x"}}, dir.file("x.svg"), "x"); }).find("no run has"),
              std::string::npos);
}


}  // namespace rankclip::test
