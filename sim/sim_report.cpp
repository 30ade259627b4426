#include "sim/sim_report.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string_view>
#include <utility>

namespace sinfer {
namespace {

// ---------------------------------------------------------------------------
// Text: escaping and number formatting. Numbers go through std::to_chars,
// which never consults the locale (printf would print "1,5" under de_DE).

const char* const en_dash = "\xE2\x80\x93";
const char* const arrow = "\xE2\x86\x92";
const char* const middot = "\xC2\xB7";
const char* const ellipsis = "\xE2\x80\xA6";

/// A figure that could not be computed (NaN, infinite) is drawn and printed as 0.
double finite_or_zero(double v) {
  // Adding 0.0 turns -0.0 into 0.0, so no "-0" is ever printed.
  return std::isfinite(v) ? v + 0.0 : 0.0;
}

/// `v` with `decimals` digits after the point, like "%.1f".
std::string fixed(double v, int decimals) {
  char buf[400]; // room for DBL_MAX in fixed notation
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, finite_or_zero(v), std::chars_format::fixed, decimals);
  return ec == std::errc{} ? std::string(buf, end) : std::string("0");
}

/// `v` with three significant digits, like "%.3g".
std::string sig3(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, finite_or_zero(v), std::chars_format::general, 3);
  return ec == std::errc{} ? std::string(buf, end) : std::string("0");
}

/// A table figure: three significant digits, but whole numbers from 1000 up
/// ("1234", not "1.23e+03").
std::string figure(double v) {
  return std::abs(finite_or_zero(v)) >= 1000 ? fixed(v, 0) : sig3(v);
}

/// An axis tick: short, with k and M for thousands and millions.
std::string tick_label(double v) {
  double a = std::abs(v);
  if (a >= 1e6)
    return sig3(v / 1e6) + "M";
  if (a >= 1e3)
    return sig3(v / 1e3) + "k";
  return sig3(v);
}

std::string seconds_text(double s) {
  return fixed(s, 1) + " s";
}

std::string duration_text(double s) {
  std::string text = seconds_text(s);
  if (finite_or_zero(s) >= 120)
    text += " (" + fixed(s / 60, 1) + " min)";
  return text;
}

std::string interval_text(double from, double to) {
  return fixed(from, 1) + en_dash + fixed(to, 1) + " s";
}

/// `s` made safe for HTML text and attribute values.
std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

/// At most `max_bytes` of `s`, cut on a UTF-8 character boundary, with an
/// ellipsis when something was cut.
std::string shorten(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  return s.substr(0, cut) + ellipsis;
}

/// ` name="value"`, the value escaped.
std::string attr(const char* name, const std::string& value) {
  return std::string{" "} + name + "=\"" + escape(value) + "\"";
}

/// ` name="12.3"`: a pixel coordinate or size.
std::string attr(const char* name, double pixels) {
  return std::string{" "} + name + "=\"" + fixed(pixels, 1) + "\"";
}

// ---------------------------------------------------------------------------
// Series: what a chart draws, taken from the samples.

/// Points over virtual time: t in seconds, v in the chart's unit.
struct series {
  std::vector<double> t, v;
};

/// How a bucket of samples becomes one point when a run has too many.
enum class bucket_reduce { mean, max };

/// Runs with more samples than this are drawn from `bucket_count` buckets.
constexpr size_t max_points = 1500;
constexpr size_t bucket_count = 1000;

using sample_value = std::function<double(const sim_sample&)>;

/// `value` of every sample of `run`, bucketed when there are too many. A
/// bucket's point sits at its last sample's time; rates and gauges take the
/// bucket's mean, latencies its max (a spike must stay visible).
series sample_series(const sim_result& run, const sample_value& value, bucket_reduce how) {
  const auto& samples = run.samples;
  series out;
  if (samples.size() <= max_points) {
    for (const auto& s : samples) {
      out.t.push_back(finite_or_zero(s.t));
      out.v.push_back(finite_or_zero(value(s)));
    }
    return out;
  }
  // With more samples than buckets, every bucket holds at least one sample.
  for (size_t b = 0; b < bucket_count; ++b) {
    size_t first = b * samples.size() / bucket_count;
    size_t last = (b + 1) * samples.size() / bucket_count;
    double acc = finite_or_zero(value(samples[first]));
    for (size_t i = first + 1; i < last; ++i) {
      double v = finite_or_zero(value(samples[i]));
      acc = how == bucket_reduce::mean ? acc + v : std::max(acc, v);
    }
    if (how == bucket_reduce::mean)
      acc /= static_cast<double>(last - first);
    out.t.push_back(finite_or_zero(samples[last - 1].t));
    out.v.push_back(acc);
  }
  return out;
}

/// Endpoint `index` of a sample, or an all-zero one when the sample lists fewer.
const sim_endpoint_sample& endpoint_of(const sim_sample& s, size_t index) {
  static const sim_endpoint_sample none{};
  return index < s.endpoints.size() ? s.endpoints[index] : none;
}

double batch_of(const sim_sample& s, size_t stage) {
  return stage < s.batch_mean.size() ? s.batch_mean[stage] : 0.0;
}

// ---------------------------------------------------------------------------
// Axes and chart geometry. Every chart has the same width and plot area, so
// their time axes line up on the page: a fault, the breaker that opened on
// it and the dip in throughput sit one above the other.

constexpr double chart_width = 1000;
constexpr double plot_left = 170; // room for the band charts' row labels
constexpr double plot_right = 980;
constexpr double legend_top = 6;
constexpr double legend_row_height = 16;
constexpr double axis_space = 38; // below the plot: tick labels, axis title
constexpr double line_plot_height = 200;
constexpr double band_row_height = 22;
constexpr double char_width = 6.4; // estimated width of an 11 px character
constexpr size_t row_label_bytes = 24;

/// A step of 1, 2 or 5 times a power of ten that cuts `range` into about `count` parts.
double nice_step(double range, int count) {
  if (!(range > 0))
    return 1;
  double raw = range / count;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / magnitude;
  double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * magnitude;
}

struct axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;

  /// Where `v` sits along the axis, from 0 (lo) to 1 (hi), clamped.
  double fraction(double v) const {
    double f = 0;
    if (log)
      f = v > 0 ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : 0;
    else
      f = (v - lo) / (hi - lo);
    return std::clamp(finite_or_zero(f), 0.0, 1.0);
  }
};

/// From 0 to a round value at or above `max_value`.
axis linear_axis(double max_value) {
  axis a;
  double step = nice_step(max_value > 0 ? max_value : 1, 5);
  a.hi = std::max(step, std::ceil(max_value / step) * step);
  for (int i = 0; i * step <= a.hi * (1 + 1e-9); ++i)
    a.ticks.push_back(i * step);
  return a;
}

/// Whole decades around [min_positive, max_value].
axis log_axis(double min_positive, double max_value) {
  axis a;
  a.log = true;
  double lo_exp = std::floor(std::log10(min_positive));
  double hi_exp = std::max(lo_exp + 1, std::ceil(std::log10(max_value)));
  a.lo = std::pow(10.0, lo_exp);
  a.hi = std::pow(10.0, hi_exp);
  for (double e = lo_exp; e <= hi_exp; ++e)
    a.ticks.push_back(std::pow(10.0, e));
  return a;
}

/// Virtual time from 0 to `x_max` seconds, labelled in minutes past 10 min.
struct time_axis {
  axis scale;
  double seconds_per_unit = 1;
  const char* unit = "s";
};

time_axis make_time_axis(double x_max) {
  time_axis ta;
  if (x_max > 600) {
    ta.seconds_per_unit = 60;
    ta.unit = "min";
  }
  double step = nice_step(x_max / ta.seconds_per_unit, 10) * ta.seconds_per_unit;
  ta.scale.hi = x_max;
  for (int i = 0; i * step <= x_max * (1 + 1e-9); ++i)
    ta.scale.ticks.push_back(i * step);
  return ta;
}

/// The plot area of one chart and its two scales.
struct frame {
  time_axis x;
  axis y;
  double top = 0, bottom = 0;

  double px(double t) const {
    return plot_left + x.scale.fraction(t) * (plot_right - plot_left);
  }
  double py(double v) const {
    return bottom - y.fraction(v) * (bottom - top);
  }
};

// ---------------------------------------------------------------------------
// SVG pieces.

/// What identifies a chart on the page: its `data-chart` name, the run it
/// belongs to (1-based; 0 for charts that show every run) and its title.
struct chart_id {
  std::string name;
  size_t run = 0;
  std::string title;
};

std::string svg_open(const chart_id& id, double height) {
  std::string s = "<svg class=\"chart\"" + attr("data-chart", id.name);
  if (id.run > 0)
    s += attr("data-run", std::to_string(id.run));
  s += " viewBox=\"0 0 " + fixed(chart_width, 0) + " " + fixed(height, 0) + "\"";
  s += attr("width", chart_width) + attr("height", height);
  s += " role=\"img\"" + attr("aria-label", id.title) + " xmlns=\"http://www.w3.org/2000/svg\">";
  s += "<title>" + escape(id.title) + "</title>";
  return s;
}

void text_at(std::string& out, double x, double y, const char* anchor, const std::string& text,
             const std::string& extra = "") {
  out += "<text" + attr("x", x) + attr("y", y) + " text-anchor=\"" + anchor + "\"" + extra + ">" + escape(text)
         + "</text>";
}

/// A filled rectangle with a tooltip.
void rect_at(std::string& out, double x, double y, double w, double h, const std::string& fill, double opacity,
             const std::string& tooltip) {
  out += "<rect" + attr("x", x) + attr("y", y) + attr("width", w) + attr("height", h) + attr("fill", fill);
  if (opacity < 1)
    out += " fill-opacity=\"" + fixed(opacity, 2) + "\"";
  out += "><title>" + escape(tooltip) + "</title></rect>";
}

void draw_time_axis(std::string& out, const frame& f) {
  for (double t : f.x.scale.ticks) {
    double x = f.px(t);
    out += "<line class=\"grid\"" + attr("x1", x) + attr("y1", f.top) + attr("x2", x) + attr("y2", f.bottom) + "/>";
    text_at(out, x, f.bottom + 14, "middle", tick_label(t / f.x.seconds_per_unit));
  }
  out += "<line class=\"axis\"" + attr("x1", plot_left) + attr("y1", f.bottom) + attr("x2", plot_right)
         + attr("y2", f.bottom) + "/>";
  text_at(out, (plot_left + plot_right) / 2, f.bottom + 32, "middle",
          std::string{"virtual time ("} + f.x.unit + ")", " class=\"axis-title\"");
}

void draw_value_axis(std::string& out, const frame& f, const std::string& unit) {
  for (double v : f.y.ticks) {
    double y = f.py(v);
    out += "<line class=\"grid\"" + attr("x1", plot_left) + attr("y1", y) + attr("x2", plot_right) + attr("y2", y)
           + "/>";
    text_at(out, plot_left - 6, y + 4, "end", tick_label(v));
  }
  out += "<line class=\"axis\"" + attr("x1", plot_left) + attr("y1", f.top) + attr("x2", plot_left)
         + attr("y2", f.bottom) + "/>";
  double mid = (f.top + f.bottom) / 2;
  std::string title = f.y.log ? unit + " (log scale)" : unit;
  text_at(out, 0, 0, "middle", title,
          " class=\"axis-title\" transform=\"translate(" + fixed(plot_left - 52, 1) + " " + fixed(mid, 1)
              + ") rotate(-90)\"");
}

/// One legend item: a line (with its dash pattern), a filled box, or (no
/// colour) just text.
struct legend_entry {
  std::string text;
  std::string colour; ///< "" for text alone
  std::string dash; ///< "" for a solid line
  bool box = false;
  double opacity = 1;
};

struct legend_svg {
  std::string svg;
  int rows = 1;
};

/// Entries from the plot's left edge rightwards, wrapping at the chart's edge.
legend_svg render_legend(const std::vector<legend_entry>& entries) {
  legend_svg l;
  double x = plot_left;
  double y = legend_top + legend_row_height / 2;
  for (const auto& e : entries) {
    auto text = shorten(e.text, 48);
    double width = 26 + static_cast<double>(text.size()) * char_width + 14;
    if (x + width > chart_width && x > plot_left) {
      x = plot_left;
      y += legend_row_height;
      ++l.rows;
    }
    if (e.colour.empty()) {
      text_at(l.svg, x, y + 4, "start", text);
      x += static_cast<double>(text.size()) * char_width + 14;
      continue;
    }
    if (e.box) {
      rect_at(l.svg, x, y - 5, 20, 10, e.colour, e.opacity, e.text);
    } else {
      l.svg += "<line class=\"line\"" + attr("x1", x) + attr("y1", y) + attr("x2", x + 20) + attr("y2", y)
               + attr("stroke", e.colour);
      if (!e.dash.empty())
        l.svg += attr("stroke-dasharray", e.dash);
      l.svg += "/>";
    }
    text_at(l.svg, x + 26, y + 4, "start", text);
    x += width;
  }
  return l;
}

double plot_top(const legend_svg& legend) {
  return legend_top + legend.rows * legend_row_height + 10;
}

// ---------------------------------------------------------------------------
// Line charts: values over virtual time, with shaded spans behind them.

struct line {
  series data;
  std::string colour;
  std::string dash; ///< "" for solid
  /// A 0 means "nothing measured" (no record written, no call made): the
  /// line breaks there instead of dropping to the axis.
  bool zero_is_gap = false;
  std::string tooltip;
};

/// A stretch of time shaded behind the lines: a fault or an open breaker.
struct shaded_span {
  double from = 0, to = 0;
  std::string colour;
  double opacity = 0.15;
  std::string tooltip;
  /// -1: the plot's full height. n >= 0: the n-th thin strip along the
  /// plot's top (a comparison shows each run's breakers in its own strip).
  int strip = -1;
};

struct line_chart {
  chart_id id;
  std::string unit;
  /// A log scale when the values span more than two decades.
  bool log_when_wide = false;
  std::vector<line> lines;
  std::vector<shaded_span> spans;
  std::vector<legend_entry> legend;
};

axis value_axis(const std::vector<line>& lines, bool log_when_wide) {
  double max_value = 0;
  double min_positive = std::numeric_limits<double>::infinity();
  for (const auto& l : lines)
    for (double v : l.data.v) {
      max_value = std::max(max_value, v);
      if (v > 0)
        min_positive = std::min(min_positive, v);
    }
  if (log_when_wide && max_value > 0 && max_value / min_positive > 100)
    return log_axis(min_positive, max_value);
  return linear_axis(max_value);
}

void draw_spans(std::string& out, const frame& f, const std::vector<shaded_span>& spans) {
  constexpr double strip_height = 5, strip_gap = 2;
  for (const auto& s : spans) {
    double x0 = f.px(s.from);
    double w = std::max(f.px(s.to) - x0, 1.0);
    if (s.strip < 0)
      rect_at(out, x0, f.top, w, f.bottom - f.top, s.colour, s.opacity, s.tooltip);
    else
      rect_at(out, x0, f.top + 1 + s.strip * (strip_height + strip_gap), w, strip_height, s.colour, 0.8, s.tooltip);
  }
}

/// The points as an SVG path, starting a new subpath after each gap. Each
/// subpath opens with a zero-length segment so that a lone point still shows
/// as a dot (round line caps).
std::string path_data(const frame& f, const line& l) {
  std::string d;
  bool pen_down = false;
  for (size_t i = 0; i < l.data.t.size(); ++i) {
    double v = l.data.v[i];
    if (l.zero_is_gap && v == 0) {
      pen_down = false;
      continue;
    }
    d += pen_down ? "L" : "M";
    d += fixed(f.px(l.data.t[i]), 1) + " " + fixed(f.py(v), 1);
    if (!pen_down)
      d += "h0";
    pen_down = true;
  }
  return d;
}

void draw_line(std::string& out, const frame& f, const line& l) {
  auto d = path_data(f, l);
  if (d.empty())
    return;
  out += "<path class=\"line\"" + attr("d", d) + attr("stroke", l.colour);
  if (!l.dash.empty())
    out += attr("stroke-dasharray", l.dash);
  out += "><title>" + escape(l.tooltip) + "</title></path>";
}

bool has_points(const std::vector<line>& lines) {
  return std::any_of(lines.begin(), lines.end(), [](const line& l) { return !l.data.t.empty(); });
}

std::string render_line_chart(const line_chart& c, double x_max) {
  auto legend = render_legend(c.legend);
  frame f;
  f.x = make_time_axis(x_max);
  f.y = value_axis(c.lines, c.log_when_wide);
  f.top = plot_top(legend);
  f.bottom = f.top + line_plot_height;
  std::string out = svg_open(c.id, f.bottom + axis_space);
  out += legend.svg;
  draw_spans(out, f, c.spans);
  draw_value_axis(out, f, c.unit);
  draw_time_axis(out, f);
  for (const auto& l : c.lines)
    draw_line(out, f, l);
  if (!has_points(c.lines))
    text_at(out, (plot_left + plot_right) / 2, (f.top + f.bottom) / 2, "middle", "no samples", " class=\"note\"");
  out += "</svg>";
  return out;
}

// ---------------------------------------------------------------------------
// Band charts: one row per endpoint (and scope), a coloured band per stretch.

struct band {
  double from = 0, to = 0;
  std::string colour;
  std::string tooltip;
  std::string text; ///< drawn on or next to the band ("" for none)
};

struct band_row {
  std::string label;
  std::vector<band> bands;
};

struct band_chart {
  chart_id id;
  std::vector<band_row> rows;
  std::vector<legend_entry> legend;
  std::string empty_note;
};

/// The band's text inside it when it fits, else right of it, else left of it.
void draw_band_text(std::string& out, double x0, double x1, double y_mid, const std::string& text) {
  double width = static_cast<double>(text.size()) * char_width;
  if (width + 6 <= x1 - x0)
    text_at(out, x0 + 3, y_mid + 4, "start", text, " class=\"on-band\"");
  else if (x1 + 3 + width <= plot_right)
    text_at(out, x1 + 3, y_mid + 4, "start", text);
  else
    text_at(out, std::max(x0 - 3, plot_left + width), y_mid + 4, "end", text);
}

/// A row label that fits the margin. A scoped label ("endpoint · subtask 3")
/// is cut in its endpoint part: the scope is what tells the rows apart.
std::string fitted_row_label(const std::string& label) {
  if (label.size() <= row_label_bytes)
    return label;
  auto sep = label.rfind(std::string{" "} + middot + " ");
  if (sep == std::string::npos || label.size() - sep + 4 > row_label_bytes)
    return shorten(label, row_label_bytes);
  auto scope = label.substr(sep);
  return shorten(label.substr(0, sep), row_label_bytes - scope.size()) + scope;
}

/// Every other row shaded, so a band reads against its row's label.
void draw_row_stripes(std::string& out, const frame& f, size_t rows) {
  for (size_t index = 0; index < rows; index += 2) {
    double y = f.top + static_cast<double>(index) * band_row_height;
    out += "<rect class=\"row\"" + attr("x", plot_left) + attr("y", y) + attr("width", plot_right - plot_left)
           + attr("height", band_row_height) + "/>";
  }
}

void draw_band_row(std::string& out, const frame& f, size_t index, const band_row& row) {
  double y = f.top + static_cast<double>(index) * band_row_height;
  auto label = fitted_row_label(row.label);
  out += "<text" + attr("x", plot_left - 8) + attr("y", y + band_row_height / 2 + 4)
         + " text-anchor=\"end\"><title>" + escape(row.label) + "</title>" + escape(label) + "</text>";
  for (const auto& b : row.bands) {
    double x0 = f.px(b.from);
    double x1 = std::max(f.px(b.to), x0 + 1.5);
    rect_at(out, x0, y + 3, x1 - x0, band_row_height - 6, b.colour, 0.85, b.tooltip);
    if (!b.text.empty())
      draw_band_text(out, x0, x1, y + band_row_height / 2, b.text);
  }
}

std::string render_band_chart(const band_chart& c, double x_max) {
  auto legend = render_legend(c.legend);
  frame f;
  f.x = make_time_axis(x_max);
  f.top = plot_top(legend);
  f.bottom = f.top + static_cast<double>(std::max<size_t>(c.rows.size(), 1)) * band_row_height;
  std::string out = svg_open(c.id, f.bottom + axis_space);
  out += legend.svg;
  draw_row_stripes(out, f, c.rows.size());
  draw_time_axis(out, f);
  for (size_t i = 0; i < c.rows.size(); ++i)
    draw_band_row(out, f, i, c.rows[i]);
  if (c.rows.empty())
    text_at(out, (plot_left + plot_right) / 2, f.top + band_row_height / 2 + 4, "middle", c.empty_note,
            " class=\"note\"");
  out += "</svg>";
  return out;
}

// ---------------------------------------------------------------------------
// Colours and line styles.

const char* const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                               "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};

const char* palette_colour(size_t i) {
  return palette[i % (sizeof palette / sizeof palette[0])];
}

const char* const open_colour = "#d62728";
const char* const half_open_colour = "#f0a30a";
const char* const fault_shade = "#7f7f7f";
const char* const run_legend_colour = "#555555";

/// Runs are told apart by dash pattern: run 1 solid, run 2 dashed, ...
const char* run_dash(size_t run_index) {
  const char* const dashes[] = {"", "7 4", "2 3", "9 3 2 3"};
  return dashes[run_index % 4];
}

const char* run_style_name(size_t run_index) {
  const char* const names[] = {"solid", "dashed", "dotted", "dash-dot"};
  return names[run_index % 4];
}

const char* fault_colour(const std::string& kind) {
  if (kind == "outage")
    return "#7f3b08";
  if (kind == "brownout")
    return "#e08214";
  if (kind == "rate-limit")
    return "#8073ac";
  if (kind == "errors")
    return "#d6604d";
  if (kind == "resets")
    return "#c51b7d";
  if (kind == "crash")
    return "#333333";
  return "#9c755f";
}

const char* breaker_colour(const std::string& state) {
  return state == "open" ? open_colour : half_open_colour;
}

// ---------------------------------------------------------------------------
// What the charts share: run names, the time extent, the cause spans.

std::string run_name(const sim_result& run, size_t index) {
  return run.label.empty() ? "run " + std::to_string(index + 1) : run.label;
}

bool is_comparison(const std::vector<sim_result>& runs) {
  return runs.size() >= 2;
}

/// The time axis spans the longest run and everything drawn on it.
double time_extent(const std::vector<sim_result>& runs) {
  double x_max = 0;
  for (const auto& run : runs) {
    x_max = std::max(x_max, finite_or_zero(run.duration));
    for (const auto& s : run.samples)
      x_max = std::max(x_max, finite_or_zero(s.t));
    for (const auto& b : run.bands)
      x_max = std::max(x_max, finite_or_zero(b.to));
    for (const auto& f : run.faults)
      x_max = std::max(x_max, finite_or_zero(f.to));
  }
  return x_max > 0 ? x_max : 1;
}

bool same_fault(const sim_fault_span& a, const sim_fault_span& b) {
  return a.endpoint == b.endpoint && a.kind == b.kind && a.label == b.label && a.from == b.from && a.to == b.to;
}

/// The scenario's faults: the runs of a comparison share them, so each is
/// listed once, in order of first appearance.
std::vector<sim_fault_span> distinct_faults(const std::vector<sim_result>& runs) {
  std::vector<sim_fault_span> out;
  for (const auto& run : runs)
    for (const auto& f : run.faults)
      if (std::none_of(out.begin(), out.end(), [&](const sim_fault_span& g) { return same_fault(f, g); }))
        out.push_back(f);
  return out;
}

using interval = std::pair<double, double>;

/// The stretches when some breaker of `run` (any endpoint, any scope) was in
/// `state`, overlapping stretches merged: stacking one translucent band per
/// subtask would turn the shading black.
std::vector<interval> breaker_intervals(const sim_result& run, const std::string& state) {
  std::vector<interval> all;
  for (const auto& b : run.bands)
    if (b.state == state)
      all.emplace_back(finite_or_zero(b.from), finite_or_zero(b.to));
  std::sort(all.begin(), all.end());
  std::vector<interval> merged;
  for (const auto& iv : all) {
    if (!merged.empty() && iv.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, iv.second);
    else
      merged.push_back(iv);
  }
  return merged;
}

/// Faults and breaker bands, shaded behind the throughput and latency charts.
/// One run: full-height spans. A comparison: faults full height, and each
/// run's breakers in its own strip along the top.
std::vector<shaded_span> cause_spans(const std::vector<sim_result>& runs) {
  std::vector<shaded_span> spans;
  for (const auto& f : distinct_faults(runs))
    spans.push_back({f.from, f.to, fault_shade, 0.14,
                     "fault: " + f.endpoint + " " + f.label + " (" + interval_text(f.from, f.to) + ")"});
  for (size_t r = 0; r < runs.size(); ++r) {
    int strip = is_comparison(runs) ? static_cast<int>(r) : -1;
    std::string who = is_comparison(runs) ? run_name(runs[r], r) + ": " : "";
    for (const char* state : {"half-open", "open"})
      for (const auto& [from, to] : breaker_intervals(runs[r], state))
        spans.push_back({from, to, breaker_colour(state), 0.12,
                         who + "breaker " + state + " (" + interval_text(from, to) + ")", strip});
  }
  return spans;
}

/// Legend boxes for the kinds of span that are drawn.
std::vector<legend_entry> span_legend(const std::vector<shaded_span>& spans) {
  std::vector<legend_entry> out;
  auto any = [&](const char* colour) {
    return std::any_of(spans.begin(), spans.end(), [&](const shaded_span& s) { return s.colour == colour; });
  };
  if (any(fault_shade))
    out.push_back({"fault", fault_shade, "", true, 0.3});
  if (any(open_colour))
    out.push_back({"breaker open", open_colour, "", true, 0.5});
  if (any(half_open_colour))
    out.push_back({"breaker half-open", half_open_colour, "", true, 0.5});
  bool strips = std::any_of(spans.begin(), spans.end(), [](const shaded_span& s) { return s.strip >= 0; });
  if (strips)
    out.push_back({"(breaker strips: one per run, run 1 on top)", "", ""});
  return out;
}

/// In a comparison, one legend line per run in its dash pattern.
std::vector<legend_entry> run_legend(const std::vector<sim_result>& runs) {
  std::vector<legend_entry> out;
  if (!is_comparison(runs))
    return out;
  for (size_t r = 0; r < runs.size(); ++r)
    out.push_back({run_name(runs[r], r) + " (" + run_style_name(r) + ")", run_legend_colour, run_dash(r)});
  return out;
}

void append(std::vector<legend_entry>& to, const std::vector<legend_entry>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

// ---------------------------------------------------------------------------
// The charts.

/// A figure of the job as a whole, e.g. records out per second.
struct job_metric {
  const char* name;
  const char* colour;
  sample_value value;
};

/// `metrics` of every run overlaid: colour by metric, dash pattern by run.
line_chart overlay_chart(const std::vector<sim_result>& runs, chart_id id, std::string unit,
                         const std::vector<job_metric>& metrics, bucket_reduce how, bool zero_is_gap) {
  line_chart c;
  c.id = std::move(id);
  c.unit = std::move(unit);
  for (size_t r = 0; r < runs.size(); ++r)
    for (const auto& m : metrics) {
      std::string tooltip = m.name;
      if (is_comparison(runs))
        tooltip += std::string{" "} + middot + " " + run_name(runs[r], r);
      c.lines.push_back({sample_series(runs[r], m.value, how), m.colour, run_dash(r), zero_is_gap, tooltip});
    }
  for (const auto& m : metrics)
    c.legend.push_back({m.name, m.colour, ""});
  append(c.legend, run_legend(runs));
  return c;
}

std::string throughput_chart(const std::vector<sim_result>& runs, const std::vector<shaded_span>& spans,
                             double x_max) {
  std::vector<job_metric> metrics = {
      {"in", palette[0], [](const sim_sample& s) { return s.in_per_s; }},
      {"out", palette[2], [](const sim_sample& s) { return s.out_per_s; }},
      {"dead-lettered", palette[3], [](const sim_sample& s) { return s.dead_per_s; }},
  };
  auto c = overlay_chart(runs, {"throughput", 0, "Throughput"}, "records/s", metrics, bucket_reduce::mean, false);
  c.spans = spans;
  append(c.legend, span_legend(spans));
  return render_line_chart(c, x_max);
}

std::string latency_chart(const std::vector<sim_result>& runs, const std::vector<shaded_span>& spans,
                          double x_max) {
  std::vector<job_metric> metrics = {
      {"p50", palette[0], [](const sim_sample& s) { return s.p50_ms; }},
      {"p99", palette[1], [](const sim_sample& s) { return s.p99_ms; }},
      {"p999", palette[4], [](const sim_sample& s) { return s.p999_ms; }},
  };
  // A latency of 0 means no record was written in the interval: a gap.
  auto c = overlay_chart(runs, {"latency", 0, "End-to-end latency"}, "ms", metrics, bucket_reduce::max, true);
  c.log_when_wide = true;
  c.spans = spans;
  append(c.legend, span_legend(spans));
  return render_line_chart(c, x_max);
}

/// Stage names over all runs, in order of first appearance.
std::vector<std::string> all_stages(const std::vector<sim_result>& runs) {
  std::vector<std::string> out;
  for (const auto& run : runs)
    for (const auto& s : run.stages)
      if (std::find(out.begin(), out.end(), s) == out.end())
        out.push_back(s);
  return out;
}

std::string batch_chart(const std::vector<sim_result>& runs, double x_max) {
  line_chart c;
  c.id = {"batch", 0, "Mean batch size per stage"};
  c.unit = "records/call";
  auto stages = all_stages(runs);
  for (size_t r = 0; r < runs.size(); ++r)
    for (size_t i = 0; i < runs[r].stages.size(); ++i) {
      size_t colour = static_cast<size_t>(std::find(stages.begin(), stages.end(), runs[r].stages[i]) - stages.begin());
      std::string tooltip = runs[r].stages[i];
      if (is_comparison(runs))
        tooltip += std::string{" "} + middot + " " + run_name(runs[r], r);
      auto value = [i](const sim_sample& s) { return batch_of(s, i); };
      // 0 means no call in the interval: a gap, not a batch of nothing.
      c.lines.push_back({sample_series(runs[r], value, bucket_reduce::mean), palette_colour(colour), run_dash(r), true,
                         tooltip});
    }
  for (size_t i = 0; i < stages.size(); ++i)
    c.legend.push_back({stages[i], palette_colour(i), ""});
  append(c.legend, run_legend(runs));
  return render_line_chart(c, x_max);
}

bool any_server_queue(const sim_result& run, size_t endpoint) {
  return std::any_of(run.samples.begin(), run.samples.end(), [&](const sim_sample& s) {
    return finite_or_zero(endpoint_of(s, endpoint).server_queue) > 0;
  });
}

/// One run's endpoints: colour by endpoint; in flight solid, the concurrency
/// limit dashed, the server's queue dotted (only where something queued).
std::string endpoints_chart(const sim_result& run, size_t run_index, const std::string& title, double x_max) {
  line_chart c;
  c.id = {"endpoints", run_index + 1, title};
  c.unit = "calls";
  bool queue_drawn = false;
  for (size_t e = 0; e < run.endpoints.size(); ++e) {
    const auto& name = run.endpoints[e];
    auto colour = palette_colour(e);
    auto in_flight = [e](const sim_sample& s) { return endpoint_of(s, e).in_flight; };
    auto limit = [e](const sim_sample& s) { return endpoint_of(s, e).limit; };
    c.lines.push_back({sample_series(run, in_flight, bucket_reduce::mean), colour, "", false, name + " in flight"});
    c.lines.push_back({sample_series(run, limit, bucket_reduce::mean), colour, "7 4", false, name + " limit"});
    if (any_server_queue(run, e)) {
      auto queue = [e](const sim_sample& s) { return endpoint_of(s, e).server_queue; };
      c.lines.push_back({sample_series(run, queue, bucket_reduce::mean), colour, "2 3", false, name + " server queue"});
      queue_drawn = true;
    }
    c.legend.push_back({name, colour, ""});
  }
  c.legend.push_back({"in flight", run_legend_colour, ""});
  c.legend.push_back({"concurrency limit", run_legend_colour, "7 4"});
  if (queue_drawn)
    c.legend.push_back({"server queue", run_legend_colour, "2 3"});
  return render_line_chart(c, x_max);
}

/// Endpoint names: `first` in order, then any other endpoint `more` names.
template <class T, class Name>
std::vector<std::string> endpoint_rows(const std::vector<std::string>& first, const std::vector<T>& more, Name name) {
  std::vector<std::string> out = first;
  for (const auto& item : more)
    if (std::find(out.begin(), out.end(), name(item)) == out.end())
      out.push_back(name(item));
  return out;
}

/// "subtask 2" before "subtask 10": the text, then the number that ends it.
std::pair<std::string, long long> scope_order(const std::string& scope) {
  size_t digits = scope.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(scope[digits - 1])) && scope.size() - digits < 15)
    --digits;
  long long number = digits < scope.size() ? std::stoll(scope.substr(digits)) : -1;
  return {scope.substr(0, digits), number};
}

/// The non-job scopes of `endpoint`'s bands, in natural order.
std::vector<std::string> subtask_scopes(const sim_result& run, const std::string& endpoint) {
  std::vector<std::string> scopes;
  for (const auto& b : run.bands)
    if (b.endpoint == endpoint && b.scope != "job" && std::find(scopes.begin(), scopes.end(), b.scope) == scopes.end())
      scopes.push_back(b.scope);
  std::sort(scopes.begin(), scopes.end(),
            [](const std::string& a, const std::string& b) { return scope_order(a) < scope_order(b); });
  return scopes;
}

band_row breaker_row(const sim_result& run, const std::string& endpoint, const std::string& scope) {
  band_row row{endpoint + " " + middot + " " + scope, {}};
  for (const auto& b : run.bands)
    if (b.endpoint == endpoint && b.scope == scope)
      row.bands.push_back({b.from, b.to, breaker_colour(b.state),
                           scope + " breaker " + b.state + " (" + interval_text(b.from, b.to) + ")", ""});
  return row;
}

/// One run's breakers: per endpoint a row for the job scope, then one per
/// subtask scope that left the closed state.
std::string breakers_chart(const sim_result& run, size_t run_index, const std::string& title, double x_max) {
  band_chart c;
  c.id = {"breakers", run_index + 1, title};
  c.empty_note = "no endpoints";
  auto names = endpoint_rows(run.endpoints, run.bands, [](const sim_breaker_band& b) { return b.endpoint; });
  for (const auto& endpoint : names) {
    c.rows.push_back(breaker_row(run, endpoint, "job"));
    for (const auto& scope : subtask_scopes(run, endpoint))
      c.rows.push_back(breaker_row(run, endpoint, scope));
  }
  c.legend = {{"open", open_colour, "", true, 0.85},
              {"half-open", half_open_colour, "", true, 0.85},
              {"closed: no band", "", ""}};
  return render_band_chart(c, x_max);
}

std::string faults_chart(const std::vector<sim_result>& runs, double x_max) {
  band_chart c;
  c.id = {"faults", 0, "Injected faults"};
  c.empty_note = "no endpoints, no faults";
  auto faults = distinct_faults(runs);
  auto names = endpoint_rows(runs.front().endpoints, faults, [](const sim_fault_span& f) { return f.endpoint; });
  for (const auto& endpoint : names) {
    band_row row{endpoint, {}};
    for (const auto& f : faults)
      if (f.endpoint == endpoint)
        row.bands.push_back(
            {f.from, f.to, fault_colour(f.kind), f.label + " (" + interval_text(f.from, f.to) + ")", f.label});
    c.rows.push_back(std::move(row));
  }
  std::vector<std::string> kinds;
  for (const auto& f : faults)
    if (std::find(kinds.begin(), kinds.end(), f.kind) == kinds.end())
      kinds.push_back(f.kind);
  for (const auto& kind : kinds)
    c.legend.push_back({kind, fault_colour(kind), "", true, 0.85});
  if (kinds.empty())
    c.legend.push_back({"no fault injected", "", ""});
  return render_band_chart(c, x_max);
}

// ---------------------------------------------------------------------------
// Tables.

std::string cell(const char* tag, const std::string& text, bool numeric = false, size_t rowspan = 1) {
  std::string s = std::string{"<"} + tag;
  if (numeric)
    s += " class=\"n\"";
  if (rowspan > 1)
    s += " rowspan=\"" + std::to_string(rowspan) + "\"";
  return s + ">" + escape(text) + "</" + tag + ">";
}

std::string count(uint64_t n) {
  return std::to_string(n);
}

/// One row per figure, one column per run.
std::string summary_table(const std::vector<sim_result>& runs) {
  struct row {
    const char* name;
    std::function<std::string(const sim_result&)> value;
  };
  const std::vector<row> rows = {
      {"seed", [](const sim_result& r) { return count(r.seed); }},
      {"virtual duration", [](const sim_result& r) { return duration_text(r.duration); }},
      {"records in", [](const sim_result& r) { return count(r.records_in); }},
      {"records out", [](const sim_result& r) { return count(r.records_out); }},
      {"dead-lettered", [](const sim_result& r) { return count(r.dead_lettered); }},
      {"lost", [](const sim_result& r) { return count(r.lost); }},
      {"goodput (records/s)", [](const sim_result& r) { return fixed(r.goodput, 1); }},
      {"latency p50 (ms)", [](const sim_result& r) { return figure(r.p50_ms); }},
      {"latency p99 (ms)", [](const sim_result& r) { return figure(r.p99_ms); }},
      {"latency p999 (ms)", [](const sim_result& r) { return figure(r.p999_ms); }},
      {"calls", [](const sim_result& r) { return count(r.calls); }},
      {"wasted calls", [](const sim_result& r) { return count(r.wasted_calls); }},
      {"retries", [](const sim_result& r) { return count(r.retries); }},
      {"restarts", [](const sim_result& r) { return count(r.restarts); }},
  };
  std::string t = "<table class=\"summary\"><thead><tr><th></th>";
  for (size_t r = 0; r < runs.size(); ++r)
    t += cell("th", runs.size() == 1 && runs[r].label.empty() ? "value" : run_name(runs[r], r), true);
  t += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    t += "<tr>" + cell("th", row.name);
    for (const auto& run : runs)
      t += cell("td", row.value(run), true);
    t += "</tr>";
  }
  return t + "</tbody></table>";
}

/// Rows grouped by item name (a phase, an endpoint), one row per run that
/// has the item; in a comparison a "run" column tells them apart.
template <class T>
std::string grouped_table(const std::vector<sim_result>& runs, const std::vector<T> sim_result::*items,
                          const std::string& item_heading, const std::vector<std::string>& headings,
                          const std::function<std::string(const T&)>& name,
                          const std::function<std::vector<std::string>(const T&)>& figures) {
  std::vector<std::string> names;
  for (const auto& run : runs)
    for (const auto& item : run.*items)
      if (std::find(names.begin(), names.end(), name(item)) == names.end())
        names.push_back(name(item));
  bool comparison = is_comparison(runs);
  std::string t = "<table><thead><tr>" + cell("th", item_heading);
  if (comparison)
    t += cell("th", "run");
  for (const auto& h : headings)
    t += cell("th", h, true);
  t += "</tr></thead><tbody>";
  for (const auto& n : names) {
    std::vector<std::pair<size_t, const T*>> found; // (run index, item)
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto& list = runs[r].*items;
      auto it = std::find_if(list.begin(), list.end(), [&](const T& item) { return name(item) == n; });
      if (it != list.end())
        found.emplace_back(r, &*it);
    }
    for (size_t i = 0; i < found.size(); ++i) {
      t += "<tr>";
      if (i == 0)
        t += cell("th", n, false, found.size());
      if (comparison)
        t += cell("td", run_name(runs[found[i].first], found[i].first));
      for (const auto& f : figures(*found[i].second))
        t += cell("td", f, true);
      t += "</tr>";
    }
  }
  return t + "</tbody></table>";
}

std::string phase_table(const std::vector<sim_result>& runs) {
  if (std::all_of(runs.begin(), runs.end(), [](const sim_result& r) { return r.phases.empty(); }))
    return "<p class=\"note\">The scenario names no phases.</p>";
  return grouped_table<sim_phase>(
      runs, &sim_result::phases, "phase",
      {"virtual time", "records out", "dead-lettered", "goodput (records/s)", "p50 (ms)", "p99 (ms)", "p999 (ms)"},
      [](const sim_phase& p) { return p.name; },
      [](const sim_phase& p) {
        return std::vector<std::string>{interval_text(p.from, p.to), count(p.records_out), count(p.dead_lettered),
                                        fixed(p.goodput, 1),         figure(p.p50_ms),     figure(p.p99_ms),
                                        figure(p.p999_ms)};
      });
}

std::string endpoint_table(const std::vector<sim_result>& runs) {
  if (std::all_of(runs.begin(), runs.end(), [](const sim_result& r) { return r.endpoint_totals.empty(); }))
    return "<p class=\"note\">No endpoint.</p>";
  return grouped_table<sim_endpoint_total>(
      runs, &sim_result::endpoint_totals, "endpoint",
      {"calls", "failures", "timeouts", "rate-limited", "records ok", "max in flight", "final limit"},
      [](const sim_endpoint_total& e) { return e.name; },
      [](const sim_endpoint_total& e) {
        return std::vector<std::string>{count(e.calls),      count(e.failures),      count(e.timeouts),
                                        count(e.rate_limited), count(e.records_ok), count(e.max_in_flight),
                                        count(e.final_limit)};
      });
}

std::string transition_table(const sim_result& run) {
  if (run.transitions.empty())
    return "<p class=\"note\">No breaker changed state.</p>";
  std::string t = "<table><thead><tr>" + cell("th", "virtual time (s)", true) + cell("th", "endpoint")
                  + cell("th", "scope") + cell("th", "change") + cell("th", "calls", true)
                  + cell("th", "failures", true) + "</tr></thead><tbody>";
  for (const auto& tr : run.transitions)
    t += "<tr>" + cell("td", fixed(tr.at, 1), true) + cell("td", tr.endpoint) + cell("td", tr.scope)
         + cell("td", tr.from + " " + arrow + " " + tr.to) + cell("td", count(tr.calls), true)
         + cell("td", count(tr.failures), true) + "</tr>";
  return t + "</tbody></table>";
}

// ---------------------------------------------------------------------------
// The page.

const char* const page_css = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f}
body{background:#fff;max-width:1040px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:16px 0 6px}
.meta{color:#555;margin:2px 0}
.note{color:#666;font-style:italic}
table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#f5f5f7}
tbody th{font-weight:600;background:#fafafa}
.n{text-align:right}
figure{margin:0 0 10px;break-inside:avoid;page-break-inside:avoid}
figcaption{font-weight:600;margin:14px 0 2px}
svg.chart{display:block;width:100%;height:auto;max-width:1000px}
svg.chart text{font-size:11px;fill:#333}
svg.chart text.axis-title{fill:#555}
svg.chart text.note{fill:#888;font-style:italic}
svg.chart text.on-band{fill:#fff}
svg.chart .grid{stroke:#e8e8e8;stroke-width:1}
svg.chart .axis{stroke:#888;stroke-width:1}
svg.chart .row{fill:#f6f6f6}
svg.chart .line{fill:none;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}
svg.chart rect{stroke:none}
@media print{body{margin:0;max-width:none}h2{break-after:avoid;page-break-after:avoid}table{break-inside:avoid}}
)";

std::string page_open(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
         + escape(title) + "</title>\n<style>" + page_css + "</style>\n</head>\n<body>\n";
}

std::string section(const std::string& heading, const std::string& body) {
  return "<section>\n<h2>" + escape(heading) + "</h2>\n" + body + "\n</section>\n";
}

std::string chart_figure(const std::string& caption, const std::string& svg) {
  return "<figure><figcaption>" + escape(caption) + "</figcaption>\n" + svg + "\n</figure>\n";
}

std::string scenario_name(const std::vector<sim_result>& runs) {
  return runs.front().scenario.empty() ? "(unnamed scenario)" : runs.front().scenario;
}

std::string header(const std::vector<sim_result>& runs) {
  std::vector<uint64_t> seeds;
  for (const auto& run : runs)
    if (std::find(seeds.begin(), seeds.end(), run.seed) == seeds.end())
      seeds.push_back(run.seed);
  std::string seed_text = seeds.size() == 1 ? "seed " : "seeds ";
  for (size_t i = 0; i < seeds.size(); ++i)
    seed_text += (i > 0 ? ", " : "") + count(seeds[i]);
  const auto& first = runs.front();
  std::string sep = std::string{" "} + middot + " ";
  std::string h = "<header>\n<h1>Simulation: " + escape(scenario_name(runs)) + "</h1>\n<p class=\"meta\">"
                  + escape(seed_text + sep + "virtual duration " + duration_text(first.duration) + sep
                           + "sample interval " + seconds_text(first.sample_interval) + sep
                           + count(first.samples.size()) + " samples")
                  + "</p>\n";
  if (is_comparison(runs)) {
    std::string compared = "Comparing " + count(runs.size()) + " configs: ";
    for (size_t r = 0; r < runs.size(); ++r)
      compared += (r > 0 ? ", " : "") + run_name(runs[r], r) + " (" + run_style_name(r) + " lines)";
    h += "<p class=\"meta\">" + escape(compared) + "</p>\n";
  } else if (!first.label.empty()) {
    h += "<p class=\"meta\">" + escape("Config: " + first.label) + "</p>\n";
  }
  return h + "</header>\n";
}

/// A per-run chart's caption: the chart, and in a comparison the run's label.
std::string per_run_caption(const std::string& what, const std::vector<sim_result>& runs, size_t r) {
  return is_comparison(runs) ? what + " " + en_dash + " " + run_name(runs[r], r) : what;
}

std::string charts(const std::vector<sim_result>& runs) {
  double x_max = time_extent(runs);
  auto spans = cause_spans(runs);
  std::string body;
  body += chart_figure("Throughput (records/s; shaded: faults and breakers)", throughput_chart(runs, spans, x_max));
  body += chart_figure("End-to-end latency (ms; shaded: faults and breakers)", latency_chart(runs, spans, x_max));
  for (size_t r = 0; r < runs.size(); ++r) {
    auto caption = per_run_caption("Endpoints: in flight, concurrency limit, server queue", runs, r);
    body += chart_figure(caption, endpoints_chart(runs[r], r, caption, x_max));
  }
  body += chart_figure("Mean batch size per stage", batch_chart(runs, x_max));
  for (size_t r = 0; r < runs.size(); ++r) {
    auto caption = per_run_caption("Breakers", runs, r);
    body += chart_figure(caption, breakers_chart(runs[r], r, caption, x_max));
  }
  body += chart_figure("Injected faults", faults_chart(runs, x_max));
  return body;
}

std::string transitions(const std::vector<sim_result>& runs) {
  if (!is_comparison(runs))
    return transition_table(runs.front());
  std::string body;
  for (size_t r = 0; r < runs.size(); ++r)
    body += "<h3>" + escape(run_name(runs[r], r)) + "</h3>\n" + transition_table(runs[r]) + "\n";
  return body;
}

const char* const page_close = "<footer class=\"note\">Written by sinfer sim. Every figure is in virtual time and "
                               "follows from the scenario, its configs and the seed.</footer>\n</body>\n</html>\n";

} // namespace

std::string render_sim_report(const std::vector<sim_result>& runs) {
  if (runs.empty())
    return page_open("sinfer sim report") + "<h1>Simulation report</h1>\n<p class=\"note\">No runs to show.</p>\n"
           + page_close;
  std::string page = page_open("sinfer sim: " + scenario_name(runs));
  page += header(runs);
  page += section("Summary", summary_table(runs));
  page += section("Phases", phase_table(runs));
  page += section("Over virtual time", charts(runs));
  page += section("Endpoints", endpoint_table(runs));
  page += section("Breaker transitions", transitions(runs));
  return page + page_close;
}

} // namespace sinfer
