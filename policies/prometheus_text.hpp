#pragma once
/// A parser for the Prometheus text exposition format 0.0.4 (what a
/// server's /metrics answers with `Content-Type: text/plain;
/// version=0.0.4`), for the `prometheus` load probe.
///
/// Who calls it: `read_probe_text` (policies/load_probe.hpp) with the body of
/// one scrape; tests. `parse_prometheus_text(text, limits)` returns every
/// sample of the page, or an error naming the line (1-based), the column
/// (1-based, in bytes), what was expected and what was found. All or
/// nothing: a page with one bad line gives no samples, so a truncated or
/// garbled page is never half-read as "these series are missing".
///
/// The grammar (https://prometheus.io/docs/instrumenting/exposition_formats/):
///   line    = blanks ( "" | comment | sample ) blanks, ending in "\n"
///             ("\r\n" tolerated; the last line may lack its "\n")
///   blanks  = any number of ' ' and '\t'
///   comment = "#" blanks "HELP" blank name [ blank text ]
///           | "#" blanks "TYPE" blank name blank type
///           | "#" anything else (ignored)
///   type    = counter | gauge | histogram | summary | untyped
///   sample  = name [ blanks "{" [ label { "," label } [ "," ] ] "}" ] blanks value
///             [ blank timestamp ]
///   name    = [a-zA-Z_:][a-zA-Z0-9_:]*   (metric names may hold colons)
///   label   = lname blanks "=" blanks '"' lvalue '"', blanks allowed
///             around "," and inside the braces
///   lname   = [a-zA-Z_][a-zA-Z0-9_]*
///   lvalue  = any bytes but '"' and a line end; escapes \\ \" \n
///   value   = a decimal float ([+-] digits [. digits] [e [+-] digits], or
///             starting with "."), NaN, +Inf, -Inf, Inf (the special names
///             in any case, "Infinity" too, as Go's ParseFloat reads them)
///   timestamp = an integer, ms since the Unix epoch (kept, not used)
/// A name with no labels needs a blank before its value; blanks between
/// the name and "{" are allowed, and after "}" none is needed.
///
/// Choices, as the Prometheus server's own scraper makes them unless said
/// (lenient where this parser's callers do not care, strict where a value
/// could be misread):
/// - "# HELP" and "# TYPE" with nothing after them are comments; HELP text
///   is not interpreted. A TYPE line must name a known type.
/// - A label value's unknown escape (e.g. `\t`) is kept as written (backslash
///   and character), as Prometheus does; only \\ \" \n are unescaped.
/// - A value too large for a double is an error; one too small is 0.
///   Hex floats are refused (Go's ParseFloat reads them; no exporter
///   writes them).
/// - The same label twice in one sample is an error.
/// - Not checked: family grouping and order (TYPE before samples, samples of
///   one family together), duplicate series, histogram/summary suffixes,
///   UTF-8 validity of label values.
///
/// Bounds (the input comes from the network and will be fuzzed): a page
/// over `max_bytes` is refused before it is read; more than `max_samples`
/// samples or more than `max_labels` labels on one sample is an error at the
/// line that crosses the bound. Every loop advances through the input; the
/// work is linear in its size. Errors never echo more than 32 bytes of the
/// input, non-printable bytes as \xNN.
/// Pure: no clocks, no threads, no I/O, no CAF.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sinfer {

/// `s` escaped as a Prometheus label value (backslash, double quote and
/// newline), for writers of the text format.
inline std::string prometheus_label_value(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

/// A sample's labels in page order, (name, unescaped value).
using prom_labels = std::vector<std::pair<std::string, std::string>>;

/// One sample line.
struct prom_sample {
  /// The metric name as written (e.g. "vllm:num_requests_running").
  std::string name;
  /// Its labels in page order.
  prom_labels labels;
  /// The value; NaN and +/-Inf as written.
  double value = 0.0;
  /// The timestamp in ms since the Unix epoch, when the line has one.
  std::optional<int64_t> timestamp_ms;
};

/// Bounds of `parse_prometheus_text`.
struct prom_parse_limits {
  /// Pages longer than this (bytes) are refused. Default 4 MiB.
  size_t max_bytes = size_t{4} << 20;
  /// Samples per page. Default 100000 (a real 4 MiB page holds far fewer:
  /// samples with labels take ~100 bytes).
  size_t max_samples = 100000;
  /// Labels per sample. Default 64.
  size_t max_labels = 64;
};

/// What `parse_prometheus_text` returns: the samples, or an error.
struct prom_parse_result {
  /// Every sample in page order; empty when `error` is set.
  std::vector<prom_sample> samples;
  /// Empty when the page parsed. Otherwise one line such as
  /// "line 7, column 12: expected '=' after the label name, found '}'".
  std::string error;
  /// The 1-based line of the error; 0 when none, or when the page was
  /// refused as a whole (over `max_bytes`).
  size_t error_line = 0;

  bool ok() const noexcept {
    return error.empty();
  }
};

namespace detail {

inline bool prom_blank(char c) noexcept {
  return c == ' ' || c == '\t';
}
inline bool prom_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
inline bool prom_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
inline bool prom_ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

/// At most 32 bytes of `s`, quoted, non-printable bytes as \xNN.
inline std::string prom_quote(std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t n = s.size() < 32 ? s.size() : 32;
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  if (s.size() > n)
    out += "...";
  out += '"';
  return out;
}

/// Parses a value token (see the file comment). False when it is not one.
/// `overflow` is set when it is a number too large for a double.
inline bool prom_parse_value(std::string_view tok, double& out, bool& overflow) noexcept {
  overflow = false;
  if (prom_ieq(tok, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  std::string_view body = tok;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (prom_ieq(body, "inf") || prom_ieq(body, "infinity")) {
    out = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  // [digits] [. digits] [e [+-] digits], at least one mantissa digit.
  size_t i = 0, mantissa_digits = 0;
  long long first_nonzero = -1; // position of the first non-zero mantissa digit
  while (i < body.size() && prom_digit(body[i])) {
    if (body[i] != '0' && first_nonzero < 0)
      first_nonzero = static_cast<long long>(mantissa_digits);
    ++i;
    ++mantissa_digits;
  }
  const auto point = static_cast<long long>(mantissa_digits); // mantissa digits before the point
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && prom_digit(body[i])) {
      if (body[i] != '0' && first_nonzero < 0)
        first_nonzero = static_cast<long long>(mantissa_digits);
      ++i;
      ++mantissa_digits;
    }
  }
  if (mantissa_digits == 0)
    return false;
  long long exponent = 0;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) {
      exp_negative = body[i] == '-';
      ++i;
    }
    size_t exp_digits = 0;
    while (i < body.size() && prom_digit(body[i])) {
      if (exponent < 100000000)
        exponent = exponent * 10 + (body[i] - '0');
      ++i;
      ++exp_digits;
    }
    if (exp_digits == 0)
      return false;
    if (exp_negative)
      exponent = -exponent;
  }
  if (i != body.size())
    return false;
  if (first_nonzero < 0) { // all zeros
    out = negative ? -0.0 : 0.0;
    return true;
  }
  double v = 0.0;
  auto res = std::from_chars(body.data(), body.data() + body.size(), v, std::chars_format::general);
  if (res.ec == std::errc::result_out_of_range) {
    // Decimal magnitude: the first non-zero digit stands at 10^(point - 1 -
    // first_nonzero + exponent). Large: overflow; small: underflow to 0.
    if (point - first_nonzero + exponent > 0) {
      overflow = true;
      return false;
    }
    v = 0.0;
  } else if (res.ec != std::errc{} || res.ptr != body.data() + body.size()) {
    return false;
  }
  out = negative ? -v : v;
  return true;
}

/// Parses a timestamp token: [+-] digits, within int64.
inline bool prom_parse_timestamp(std::string_view tok, int64_t& out) noexcept {
  std::string_view body = tok;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.empty())
    return false;
  for (char c : body)
    if (!prom_digit(c))
      return false;
  // Parse as unsigned magnitude, then apply the sign (so INT64_MIN fits).
  uint64_t mag = 0;
  auto res = std::from_chars(body.data(), body.data() + body.size(), mag);
  if (res.ec != std::errc{} || res.ptr != body.data() + body.size())
    return false;
  constexpr uint64_t max_pos = static_cast<uint64_t>(INT64_MAX);
  if (negative) {
    if (mag > max_pos + 1)
      return false;
    out = mag == max_pos + 1 ? INT64_MIN : -static_cast<int64_t>(mag);
  } else {
    if (mag > max_pos)
      return false;
    out = static_cast<int64_t>(mag);
  }
  return true;
}

/// The state of one parse; each `parse_*` member reads one line or token
/// and returns false after setting `error`.
class prom_parser {
public:
  prom_parser(std::string_view text, const prom_parse_limits& limits, prom_parse_result& out)
    : text_(text), limits_(limits), out_(out) {
  }

  bool run() {
    size_t start = 0;
    line_no_ = 0;
    while (start < text_.size()) {
      ++line_no_;
      size_t nl = text_.find('\n', start);
      size_t end = nl == std::string_view::npos ? text_.size() : nl;
      line_ = text_.substr(start, end - start);
      if (!line_.empty() && line_.back() == '\r')
        line_.remove_suffix(1);
      pos_ = 0;
      if (!parse_line())
        return false;
      if (nl == std::string_view::npos)
        break;
      start = nl + 1;
    }
    return true;
  }

private:
  bool at_end() const noexcept {
    return pos_ >= line_.size();
  }
  char cur() const noexcept {
    return line_[pos_];
  }
  void skip_blanks() noexcept {
    while (!at_end() && prom_blank(cur()))
      ++pos_;
  }

  /// What stands at the current position, for an error: 'c' or "end of line".
  std::string found_char() const {
    if (at_end())
      return "end of line";
    std::string q = prom_quote(line_.substr(pos_, 1)); // "\"c\""
    return "'" + q.substr(1, q.size() - 2) + "'";
  }

  bool fail(const std::string& what) {
    return fail_at(pos_, what);
  }
  bool fail_at(size_t column0, const std::string& what) {
    out_.error_line = line_no_;
    out_.error = "line " + std::to_string(line_no_) + ", column " + std::to_string(column0 + 1) + ": " + what;
    return false;
  }

  /// Reads a token up to the next blank or line end.
  std::string_view read_token() noexcept {
    size_t b = pos_;
    while (!at_end() && !prom_blank(cur()))
      ++pos_;
    return line_.substr(b, pos_ - b);
  }

  /// Reads a metric name; empty when none stands here.
  std::string_view read_metric_name() noexcept {
    size_t b = pos_;
    if (at_end() || !(prom_alpha(cur()) || cur() == ':'))
      return {};
    ++pos_;
    while (!at_end() && (prom_alpha(cur()) || prom_digit(cur()) || cur() == ':'))
      ++pos_;
    return line_.substr(b, pos_ - b);
  }

  /// Reads a label name; empty when none stands here.
  std::string_view read_label_name() noexcept {
    size_t b = pos_;
    if (at_end() || !prom_alpha(cur()))
      return {};
    ++pos_;
    while (!at_end() && (prom_alpha(cur()) || prom_digit(cur())))
      ++pos_;
    return line_.substr(b, pos_ - b);
  }

  bool parse_line() {
    skip_blanks();
    if (at_end())
      return true; // blank line
    if (cur() == '#')
      return parse_comment();
    return parse_sample();
  }

  bool parse_comment() {
    ++pos_; // '#'
    skip_blanks();
    auto keyword = read_token();
    if (keyword != "HELP" && keyword != "TYPE")
      return true; // an ordinary comment
    skip_blanks();
    if (at_end())
      return true; // "# HELP" alone: a comment, as in Prometheus
    auto name = read_metric_name();
    if (name.empty())
      return fail("expected a metric name after '# " + std::string(keyword) + "', found " + found_char());
    if (!at_end() && !prom_blank(cur()))
      return fail("expected a blank after the metric name " + prom_quote(name) + ", found " + found_char());
    if (keyword == "HELP")
      return true; // the text is not interpreted
    skip_blanks();
    size_t type_at = pos_;
    auto type = read_token();
    if (type.empty())
      return fail("expected a metric type (counter, gauge, histogram, summary, untyped) after " +
                  prom_quote(name) + ", found end of line");
    if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
      return fail_at(type_at, "expected a metric type (counter, gauge, histogram, summary, untyped), found " +
                                prom_quote(type));
    skip_blanks();
    if (!at_end())
      return fail("expected end of line after the metric type, found " + found_char());
    return true;
  }

  bool parse_sample() {
    auto name = read_metric_name();
    if (name.empty())
      return fail("expected a metric name, '#' or a blank line, found " + found_char());
    if (out_.samples.size() >= limits_.max_samples)
      return fail_at(0, "more than " + std::to_string(limits_.max_samples) + " samples");
    prom_sample s;
    s.name = std::string(name);
    if (at_end())
      return fail("expected a value after the metric name " + prom_quote(name) + ", found end of line");
    if (cur() != '{' && !prom_blank(cur()))
      return fail("expected '{' or a blank after the metric name " + prom_quote(name) + ", found " + found_char());
    skip_blanks();
    if (!at_end() && cur() == '{') {
      ++pos_;
      if (!parse_labels(s))
        return false;
      skip_blanks();
    }
    size_t value_at = pos_;
    auto value = read_token();
    if (value.empty())
      return fail("expected a value after " + prom_quote(name) + ", found end of line");
    bool overflow = false;
    if (!prom_parse_value(value, s.value, overflow)) {
      if (overflow)
        return fail_at(value_at, "value " + prom_quote(value) + " is out of the range of a double");
      return fail_at(value_at, "expected a value (a number, NaN, +Inf or -Inf), found " + prom_quote(value));
    }
    skip_blanks();
    if (!at_end()) {
      size_t ts_at = pos_;
      auto ts = read_token();
      int64_t t = 0;
      if (!prom_parse_timestamp(ts, t))
        return fail_at(ts_at, "expected a timestamp (integer milliseconds) or end of line after the value, found " +
                                  prom_quote(ts));
      s.timestamp_ms = t;
      skip_blanks();
      if (!at_end())
        return fail("expected end of line after the timestamp, found " + found_char());
    }
    out_.samples.push_back(std::move(s));
    return true;
  }

  /// After "{": labels up to and including "}".
  bool parse_labels(prom_sample& s) {
    for (;;) {
      skip_blanks();
      if (at_end())
        return fail("expected a label name or '}', found end of line");
      if (cur() == '}') {
        ++pos_;
        return true;
      }
      size_t name_at = pos_;
      auto lname = read_label_name();
      if (lname.empty())
        return fail("expected a label name or '}', found " + found_char());
      skip_blanks();
      if (at_end() || cur() != '=')
        return fail("expected '=' after the label name " + prom_quote(lname) + ", found " + found_char());
      ++pos_;
      skip_blanks();
      if (at_end() || cur() != '"')
        return fail("expected '\"' to open the value of label " + prom_quote(lname) + ", found " + found_char());
      ++pos_;
      std::string value;
      bool closed = false;
      while (!at_end()) {
        char c = cur();
        if (c == '"') {
          ++pos_;
          closed = true;
          break;
        }
        if (c == '\\' && pos_ + 1 < line_.size()) {
          char e = line_[pos_ + 1];
          if (e == '\\' || e == '"') {
            value += e;
            pos_ += 2;
            continue;
          }
          if (e == 'n') {
            value += '\n';
            pos_ += 2;
            continue;
          }
        }
        value += c; // includes an unknown escape's backslash, kept as written
        ++pos_;
      }
      if (!closed)
        return fail("expected '\"' to close the value of label " + prom_quote(lname) + ", found end of line");
      for (auto& kv : s.labels)
        if (kv.first == lname)
          return fail_at(name_at, "label " + prom_quote(lname) + " appears twice");
      if (s.labels.size() >= limits_.max_labels)
        return fail_at(name_at, "more than " + std::to_string(limits_.max_labels) + " labels on one sample");
      s.labels.emplace_back(std::string(lname), std::move(value));
      skip_blanks();
      if (at_end())
        return fail("expected ',' or '}' after the value of label " + prom_quote(lname) + ", found end of line");
      if (cur() == ',') {
        ++pos_;
        continue;
      }
      if (cur() == '}') {
        ++pos_;
        return true;
      }
      return fail("expected ',' or '}' after the value of label " + prom_quote(lname) + ", found " + found_char());
    }
  }

  std::string_view text_;
  const prom_parse_limits& limits_;
  prom_parse_result& out_;
  std::string_view line_;
  size_t pos_ = 0;
  size_t line_no_ = 0;
};

} // namespace detail

/// Parses one page of the text format 0.0.4 (see the file comment). Never
/// throws for any input except std::bad_alloc.
inline prom_parse_result parse_prometheus_text(std::string_view text, const prom_parse_limits& limits = {}) {
  prom_parse_result out;
  if (text.size() > limits.max_bytes) {
    out.error = "the page is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                std::to_string(limits.max_bytes);
    return out;
  }
  detail::prom_parser p{text, limits, out};
  if (!p.run())
    out.samples.clear();
  return out;
}

/// Whether `s` carries every (name, value) pair of `subset` (an empty
/// subset matches every sample).
inline bool has_labels(const prom_sample& s, const prom_labels& subset) noexcept {
  for (auto& want : subset) {
    bool found = false;
    for (auto& kv : s.labels)
      if (kv.first == want.first) {
        found = kv.second == want.second;
        break;
      }
    if (!found)
      return false;
  }
  return true;
}

/// The first sample named `name` that carries every label of `subset`, or
/// nullptr. The pointer is into `samples`.
inline const prom_sample* find_sample(const std::vector<prom_sample>& samples, std::string_view name,
                                      const prom_labels& subset = {}) noexcept {
  for (auto& s : samples)
    if (s.name == name && has_labels(s, subset))
      return &s;
  return nullptr;
}

} // namespace sinfer
