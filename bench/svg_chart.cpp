#include "bench/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace flashline {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.3g}", v);
  std::string s = fmt::format("{:.4f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  double map(double v, double p0, double p1) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double x = log ? std::log10(v) : v;
    return p0 + (x - a) / (b - a) * (p1 - p0);
  }
};

Axis make_axis(double lo, double hi, bool log, bool from_zero) {
  Axis a;
  a.log = log && lo > 0;
  if (a.log) {
    a.lo = std::pow(10, std::floor(std::log10(lo)));
    a.hi = std::pow(10, std::ceil(std::log10(hi)));
    if (a.hi <= a.lo) a.hi = a.lo * 10;
    for (double d = a.lo; d <= a.hi * 1.0001; d *= 10)
      for (double m : {1.0, 2.0, 5.0})
        if (d * m >= lo / 1.0001 && d * m <= hi * 1.0001) a.ticks.push_back(d * m);
    a.lo = std::min(lo, a.ticks.empty() ? lo : a.ticks.front());
    a.hi = std::max(hi, a.ticks.empty() ? hi : a.ticks.back());
    if (a.hi <= a.lo) a.hi = a.lo * 2;
    return a;
  }
  if (from_zero) lo = std::min(lo, 0.0);
  if (hi <= lo) hi = lo + 1;
  a.ticks = nice_ticks(lo, hi, 6);
  a.lo = std::min(lo, a.ticks.front());
  a.hi = std::max(hi, a.ticks.back());
  return a;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, count - 1);
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (mag * m >= raw) {
      step = mag * m;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double t = first; t <= hi + step * 0.999; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::vector<std::pair<double, double>> cdf_points(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::vector<std::pair<double, double>> points;
  const double n = static_cast<double>(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    if (i + 1 == values.size() || values[i + 1] != values[i]) points.emplace_back(values[i], static_cast<double>(i + 1) / n);
  return points;
}

std::string render_charts_svg(const std::vector<LineChart>& charts, int width, int height) {
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      width, height * static_cast<int>(charts.size()));
  const double left = 70, right = 170, top = 34, bottom = 48;  // the legend sits on the right
  for (std::size_t c = 0; c < charts.size(); ++c) {
    const LineChart& chart = charts[c];
    const double y0 = static_cast<double>(c) * height;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    for (const auto& s : chart.series)
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(x) || !std::isfinite(y) || (chart.log_x && x <= 0)) continue;
        xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
      }
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    Axis ax = make_axis(xmin, xmax, chart.log_x, false);
    const Axis ay = make_axis(ymin, ymax, false, true);
    if (!chart.x_ticks.empty()) {
      ax.ticks.clear();
      for (double t : chart.x_ticks)
        if (t >= ax.lo && t <= ax.hi) ax.ticks.push_back(t);
    }
    const double px0 = left, px1 = width - right, py0 = y0 + height - bottom, py1 = y0 + top;
    svg += fmt::format("<g>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                       (px0 + px1) / 2, y0 + 20, escape(chart.title));
    // Grid, ticks and tick labels.
    for (double t : ax.ticks) {
      const double x = ax.map(t, px0, px1);
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e0e0e0\"/>\n", x, py0, py1);
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>\n", x, py0, py0 + 5);
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x, py0 + 18, tick_label(t));
    }
    for (double t : ay.ticks) {
      const double y = ay.map(t, py0, py1);
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#e0e0e0\"/>\n", px0, y, px1);
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"black\"/>\n", px0 - 5, y, px0);
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", px0 - 8, y + 4, tick_label(t));
    }
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"black\"/>\n",
                       px0, py1, px1 - px0, py0 - py1);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", (px0 + px1) / 2,
                       y0 + height - 10, escape(chart.x_label));
    svg += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", 18.0,
                       (py0 + py1) / 2, escape(chart.y_label));
    // Series and legend.
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
      const auto& series = chart.series[s];
      const char* color = kColors[s % std::size(kColors)];
      std::string path;
      for (const auto& [x, y] : series.points) {
        if (!std::isfinite(x) || !std::isfinite(y) || (ax.log && x <= 0)) continue;
        path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", ax.map(x, px0, px1), ay.map(y, py0, py1));
        if (chart.markers)
          svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", ax.map(x, px0, px1),
                             ay.map(y, py0, py1), color);
      }
      if (!path.empty())
        svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", path, color);
      const double ly = py1 + 8 + 18.0 * static_cast<double>(s);
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" stroke-width=\"2\"/>\n",
                         px1 + 12, ly, px1 + 32, color);
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", px1 + 38, ly + 4, escape(series.name));
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace flashline
