// report/report_table.cpp
// defines: report_rows, format_cell, report_table and paired_table (see report_table.h).
#include "report/report_table.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/error.h"
#include "eval/paired_stats.h"

namespace rankclip {

namespace {

double find_metric(const Metrics& m, const std::string& name) {
    for (const auto& [k, v] : m)
        if (k == name) return v;
    return std::nan("");
}

enum class Unit { Percent, Tau, Rank };

Unit unit_of(const std::string& key) {
    if (key.find("consistency") == 0) return Unit::Tau;
    if (key.find("rank") != std::string::npos && key.find("R@") == std::string::npos) return Unit::Rank;
    return Unit::Percent;
}

std::vector<double> values_of(const ReportColumn& column, const std::string& key) {
    std::vector<double> xs;
    for (const Metrics& m : column.runs) xs.push_back(find_metric(m, key));
    return xs;
}

bool any_finite(const std::vector<double>& xs) {
    for (double x : xs)
        if (std::isfinite(x)) return true;
    return false;
}

}  // namespace

const std::vector<ReportRow>& report_rows(const std::string& data) {
    static const std::vector<ReportRow> synthetic = {
        {"zeroshot/synthetic-shape/top1", "zero-shot shape, top-1"},
        {"zeroshot/synthetic-colour/top1", "zero-shot colour, top-1"},
        {"zeroshot/synthetic-count/top1", "zero-shot count, top-1"},
        {"zeroshot/synthetic-relation/top1", "zero-shot relation, top-1"},
        {"zeroshot/synthetic-heldout-shape/top1", "held-out compositions: shape, top-1"},
        {"zeroshot/synthetic-heldout-colour/top1", "held-out compositions: colour, top-1"},
        {"retrieval/synthetic/i2t/R@1", "image->text R@1"},
        {"retrieval/synthetic/i2t/R@5", "image->text R@5"},
        {"retrieval/synthetic/t2i/R@1", "text->image R@1"},
        {"retrieval/synthetic/t2i/R@5", "text->image R@5"},
        {"retrieval/synthetic/t2i/median_rank", "text->image median rank"},
        {"probe/synthetic/top1", "linear probe (shape), top-1"},
        {"consistency/synthetic/kendall_in", "ranking consistency (Kendall tau, in-modal)"},
        {"consistency/synthetic/kendall_cross", "ranking consistency (Kendall tau, cross-modal)"},
    };
    static const std::vector<ReportRow> fashion_mnist = {
        {"zeroshot/fashion-mnist/top1", "zero-shot, top-1"},
        {"zeroshot/fashion-mnist/top5", "zero-shot, top-5"},
        {"retrieval/fashion-mnist/i2t/R@1", "image->text R@1"},
        {"retrieval/fashion-mnist/i2t/R@5", "image->text R@5"},
        {"retrieval/fashion-mnist/t2i/R@1", "text->image R@1"},
        {"retrieval/fashion-mnist/t2i/R@5", "text->image R@5"},
        {"retrieval/fashion-mnist/t2i/median_rank", "text->image median rank"},
        {"probe/fashion-mnist/top1", "linear probe, top-1"},
        {"consistency/fashion-mnist/kendall_in", "ranking consistency (Kendall tau, in-modal)"},
        {"consistency/fashion-mnist/kendall_cross", "ranking consistency (Kendall tau, cross-modal)"},
    };
    if (data == "synthetic") return synthetic;
    if (data == "fashion-mnist") return fashion_mnist;
    throw Error("report_rows: no report rows for data '" + data + "' (synthetic, fashion-mnist)");
}

std::string format_cell(const std::string& key, const std::vector<double>& values) {
    double n = 0, sum = 0;
    for (double x : values)
        if (std::isfinite(x)) n++, sum += x;
    if (n == 0) return "-";
    const double mean = sum / n;
    double ss = 0;
    for (double x : values)
        if (std::isfinite(x)) ss += (x - mean) * (x - mean);
    const double sd = n > 1 ? std::sqrt(ss / (n - 1)) : 0.0;   // sample std over seeds
    const Unit unit = unit_of(key);
    const double k = unit == Unit::Percent ? 100.0 : 1.0;
    const char* digits = unit == Unit::Tau ? "%.3f" : "%.1f";
    const char* suffix = unit == Unit::Percent ? "%" : "";
    char a[32], b[32];
    std::snprintf(a, sizeof a, digits, k * mean);
    if (n == 1) return std::string(a) + suffix;
    std::snprintf(b, sizeof b, digits, k * sd);
    return std::string(a) + " ± " + b + suffix;
}

std::string report_table(const std::string& first_header, const std::vector<ReportRow>& rows,
                         const std::vector<ReportColumn>& columns, const std::map<std::string, double>* chance) {
    std::ostringstream t;
    t << "| " << first_header << " |";
    if (chance) t << " chance |";
    for (const ReportColumn& c : columns) t << " " << c.name << " |";
    t << "\n|---|";
    if (chance) t << "---|";
    for (size_t i = 0; i < columns.size(); i++) t << "---|";
    t << "\n";
    for (const ReportRow& row : rows) {
        bool any = false;
        for (const ReportColumn& c : columns) any = any || any_finite(values_of(c, row.key));
        if (!any) continue;   // no run evaluated it
        t << "| " << row.label << " |";
        if (chance) {
            auto it = chance->find(row.key);
            t << " " << (it == chance->end() ? "-" : format_cell(row.key, {it->second})) << " |";
        }
        for (const ReportColumn& c : columns) t << " " << format_cell(row.key, values_of(c, row.key)) << " |";
        t << "\n";
    }
    return t.str();
}

namespace {

// A difference in the metric's unit, signed: "+1.2 pp" for rates, "+0.012" for tau, "+0.5" for ranks.
std::string signed_difference(const std::string& key, double d) {
    const Unit unit = unit_of(key);
    const double k = unit == Unit::Percent ? 100.0 : 1.0, step = unit == Unit::Tau ? 1e-3 : 0.1;
    double shown = std::round(k * d / step) * step;
    if (shown == 0) shown = 0.0;   // "+0.0", never "-0.0"
    char buf[48];
    std::snprintf(buf, sizeof buf, unit == Unit::Tau ? "%+.3f" : "%+.1f", shown);
    return std::string(buf) + (unit == Unit::Percent ? " pp" : "");
}

std::string p_value(double p) {
    if (p == 0) return "0";   // no spread in the differences
    char buf[32];
    std::snprintf(buf, sizeof buf, p < 0.001 ? "%.1e" : "%.3f", p);
    return buf;
}

}  // namespace

std::string paired_table(const std::vector<ReportRow>& rows, const ReportColumn& baseline, const ReportColumn& arm) {
    std::ostringstream t;
    t << "| metric | " << baseline.name << " | " << arm.name << " | difference, 95% CI | paired t p | sign test p (+/-/=) "
      << "| per-seed differences |\n|---|---|---|---|---|---|---|\n";
    for (const ReportRow& row : rows) {
        const std::vector<double> a = values_of(arm, row.key), b = values_of(baseline, row.key);
        std::vector<double> x, y;   // the seeds both runs have
        for (size_t i = 0; i < std::min(a.size(), b.size()); i++)
            if (std::isfinite(a[i]) && std::isfinite(b[i])) x.push_back(a[i]), y.push_back(b[i]);
        if (x.empty()) continue;
        t << "| " << row.label << " | " << format_cell(row.key, b) << " | " << format_cell(row.key, a) << " | ";
        if (x.size() < 2) {
            t << signed_difference(row.key, x[0] - y[0]) << " (one seed) | - | - | - |\n";
            continue;
        }
        const PairedTTest tt = paired_t_test(x, y);
        const SignTest st = sign_test(x, y);
        const bool counts = interval_excludes_zero(tt);
        t << (counts ? "**" : "") << signed_difference(row.key, tt.mean_diff) << " [" << signed_difference(row.key, tt.ci_low)
          << ", " << signed_difference(row.key, tt.ci_high) << "]" << (counts ? "**" : "") << " | " << p_value(tt.p_two_sided)
          << " | " << p_value(st.p_two_sided) << " (" << st.positive << "/" << st.negative << "/" << st.ties << ") | ";
        for (size_t i = 0; i < x.size(); i++) t << (i ? " " : "") << signed_difference(row.key, x[i] - y[i]);
        t << " |\n";
    }
    return t.str();
}

}  // namespace rankclip
