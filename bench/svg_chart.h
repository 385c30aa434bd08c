#pragma once
// Line charts as SVG text, for benchmark results (throughput vs concurrency, latency
// percentiles vs load, latency CDFs). Written by hand: a chart of a few series with axes, ticks
// and a legend is ~200 lines, and no maintained C++ charting library that writes SVG is packaged
// for Debian (the alternatives need Python, gnuplot or a browser, which a benchmark host may
// not have).
#include <string>
#include <utility>
#include <vector>

namespace flashline {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  bool log_x = false;   // concurrencies 1, 2, 4, ... spread evenly
  bool markers = true;  // a dot at every point (off for CDFs of many points)
  std::vector<double> x_ticks;  // where to put the x ticks (a sweep's points); empty: round values
};

// Tick positions for [lo, hi]: about `count` round values (1, 2, 5 x 10^k steps).
std::vector<double> nice_ticks(double lo, double hi, int count);

// One SVG document holding the charts stacked vertically, each `width` x `height` pixels.
std::string render_charts_svg(const std::vector<LineChart>& charts, int width = 720, int height = 400);

// Empirical CDF of `values`, as points (value, fraction of values <= it), for a chart series.
std::vector<std::pair<double, double>> cdf_points(std::vector<double> values);

}  // namespace flashline
