#include "runtime/json_text.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace sinfer {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0; // start of the current run of plain characters
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

} // namespace

bool json_unquote(std::string_view raw, std::string& out) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"')
    return false;
  std::string result;
  result.reserve(raw.size() - 2);
  for (size_t i = 1; i + 1 < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\') {
      result.push_back(c);
      continue;
    }
    if (++i + 1 >= raw.size())
      return false;
    switch (raw[i]) {
      case '"': result.push_back('"'); break;
      case '\\': result.push_back('\\'); break;
      case '/': result.push_back('/'); break;
      case 'b': result.push_back('\b'); break;
      case 'f': result.push_back('\f'); break;
      case 'n': result.push_back('\n'); break;
      case 'r': result.push_back('\r'); break;
      case 't': result.push_back('\t'); break;
      case 'u': {
        auto read4 = [&](size_t at, uint32_t& v) {
          if (at + 4 > raw.size() - 1)
            return false;
          v = 0;
          for (size_t k = 0; k < 4; ++k) {
            int h = hex_value(raw[at + k]);
            if (h < 0)
              return false;
            v = v * 16 + static_cast<uint32_t>(h);
          }
          return true;
        };
        uint32_t cp = 0;
        if (!read4(i + 1, cp))
          return false;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < raw.size() && raw[i + 1] == '\\'
            && raw[i + 2] == 'u') {
          uint32_t lo = 0;
          if (read4(i + 3, lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        append_utf8(result, cp);
        break;
      }
      default:
        return false;
    }
  }
  out = std::move(result);
  return true;
}

void append_member(std::string& obj, std::string_view member) {
  while (!obj.empty() && obj.back() != '}')
    obj.pop_back();
  if (obj.empty())
    return;
  obj.pop_back(); // the closing brace
  size_t last = obj.find_last_not_of(" \t\r\n");
  bool empty_object = last != std::string::npos && obj[last] == '{';
  if (!empty_object)
    obj.push_back(',');
  obj.append(member.data(), member.size());
  obj.push_back('}');
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

} // namespace sinfer

namespace sinfer {

std::string printable_excerpt(std::string_view s, size_t max) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  size_t shown = std::min(s.size(), max);
  for (size_t i = 0; i < shown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  if (shown < s.size())
    out += "...";
  return out;
}

namespace {

bool json_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool token_end(char c) noexcept {
  return json_space(c) || c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"';
}

// The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool json_number_syntax(std::string_view t, bool& integral) noexcept {
  size_t i = 0;
  auto digits = [&] {
    size_t from = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9')
      ++i;
    return i > from;
  };
  if (i < t.size() && t[i] == '-')
    ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  integral = true;
  if (i < t.size() && t[i] == '.') {
    ++i;
    integral = false;
    if (!digits())
      return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    integral = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-'))
      ++i;
    if (!digits())
      return false;
  }
  return i == t.size();
}

// Whether an integer token (grammar already checked) fits in int64 when
// negative or uint64 otherwise: what a JSON parser that keeps integers
// exact accepts.
bool integer_fits(std::string_view t) noexcept {
  bool negative = !t.empty() && t[0] == '-';
  auto d = t.substr(negative ? 1 : 0);
  std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  if (d.size() != limit.size())
    return d.size() < limit.size();
  return d <= limit;
}

// Whether a number token (grammar already checked) is within double's range.
bool double_finite(std::string_view t) {
  std::string text{t};
  errno = 0;
  double v = std::strtod(text.c_str(), nullptr);
  return !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL));
}

std::string lowered(std::string_view t) {
  std::string out{t};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Why the bare token `t` is not a JSON value, or empty when it is one.
std::string token_problem(std::string_view t) {
  if (t == "true" || t == "false" || t == "null")
    return {};
  auto shown = printable_excerpt(t, 32);
  bool integral = false;
  if (json_number_syntax(t, integral)) {
    if (integral && !integer_fits(t))
      return "the integer " + shown + " (" + std::to_string(t.size() - (t[0] == '-' ? 1 : 0))
             + " digits) does not fit in 64 bits; write it as a decimal (1.5e30) or a string";
    if (!double_finite(t))
      return "the number " + shown + " is beyond the range of a double";
    return {};
  }
  auto low = lowered(t.substr(0, 16));
  if (!low.empty() && (low[0] == '-' || low[0] == '+'))
    low.erase(0, 1);
  if (low == "nan" || low == "inf" || low == "infinity")
    return shown + " is not a JSON number (JSON has no NaN or Infinity)";
  char c = t[0];
  if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.')
    return shown + " is not a valid JSON number";
  return "\"" + shown + "\" is not a JSON value";
}

struct scope {
  bool array = false;
  size_t index = 0;
  std::string key;
};

std::string path_of(const std::vector<scope>& scopes) {
  std::string out;
  for (auto& s : scopes) {
    if (s.array) {
      out += "[" + std::to_string(s.index) + "]";
    } else if (!s.key.empty()) {
      if (!out.empty())
        out.push_back('.');
      out += s.key;
    }
    if (out.size() > 160)
      return out.substr(0, 160) + "...";
  }
  return out;
}

} // namespace

std::string json_token_problem(std::string_view s) {
  // Nesting beyond 64 levels is counted, not kept: a record may nest
  // millions deep, and this runs on input that already failed.
  std::vector<scope> scopes;
  size_t untracked = 0;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != '"')
        j += s[j] == '\\' ? 2 : 1;
      if (j >= s.size())
        return {}; // an unterminated string: a structural problem
      size_t k = j + 1;
      while (k < s.size() && json_space(s[k]))
        ++k;
      if (k < s.size() && s[k] == ':' && untracked == 0 && !scopes.empty() && !scopes.back().array)
        scopes.back().key = printable_excerpt(s.substr(i + 1, j - i - 1), 48);
      i = j + 1;
      continue;
    }
    if (c == '{' || c == '[') {
      if (scopes.size() < 64)
        scopes.push_back(scope{c == '[', 0, {}});
      else
        ++untracked;
      ++i;
      continue;
    }
    if (c == '}' || c == ']') {
      if (untracked > 0)
        --untracked;
      else if (!scopes.empty())
        scopes.pop_back();
      ++i;
      continue;
    }
    if (c == ',') {
      if (untracked == 0 && !scopes.empty() && scopes.back().array)
        ++scopes.back().index;
      ++i;
      continue;
    }
    if (json_space(c) || c == ':') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !token_end(s[j]))
      ++j;
    auto why = token_problem(s.substr(i, j - i));
    if (!why.empty()) {
      auto where = path_of(scopes) + (untracked > 0 ? "..." : "");
      return where.empty() ? why : "at " + where + ": " + why;
    }
    i = j;
  }
  return {};
}

} // namespace sinfer
