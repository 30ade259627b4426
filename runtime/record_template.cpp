#include "runtime/record_template.hpp"

namespace sinfer {

std::optional<record_template> record_template::parse(std::string_view json, std::string& error) {
  record_template t;
  std::string literal;
  size_t i = 0;
  while (i < json.size()) {
    if (json.compare(i, 2, "${") != 0) {
      literal.push_back(json[i++]);
      continue;
    }
    auto end = json.find('}', i);
    if (end == std::string_view::npos) {
      error = "unclosed placeholder at offset " + std::to_string(i);
      return std::nullopt;
    }
    auto body = json.substr(i + 2, end - i - 2);
    part p;
    if (body == "i") {
      bool whole = !literal.empty() && literal.back() == '"' && end + 1 < json.size()
                   && json[end + 1] == '"';
      if (whole) {
        literal.pop_back();
        p.k = kind::index_number;
        ++end; // swallow the closing quote
      } else {
        p.k = kind::index;
      }
    } else if (body.substr(0, 5) == "pick:") {
      p.k = kind::pick;
      auto opts = body.substr(5);
      size_t start = 0;
      for (size_t k = 0; k <= opts.size(); ++k)
        if (k == opts.size() || opts[k] == '|') {
          p.options.emplace_back(opts.substr(start, k - start));
          start = k + 1;
        }
    } else {
      error = "unknown placeholder \"${" + std::string{body}
              + "}\" (known: ${i}, ${pick:a|b|c})";
      return std::nullopt;
    }
    if (!literal.empty())
      t.parts_.push_back(part{kind::literal, std::move(literal), {}});
    literal.clear();
    t.parts_.push_back(std::move(p));
    i = end + 1;
  }
  if (!literal.empty())
    t.parts_.push_back(part{kind::literal, std::move(literal), {}});
  return t;
}

void record_template::render(uint64_t i, uint64_t seed, std::string& out) const {
  uint64_t salt = 0;
  for (auto& p : parts_) {
    switch (p.k) {
      case kind::literal: out += p.text; break;
      case kind::index:
      case kind::index_number: out += std::to_string(i); break;
      case kind::pick: {
        auto h = splitmix64(i * 0x100000001b3ull ^ splitmix64(seed + salt++));
        out += p.options[h % p.options.size()];
        break;
      }
    }
  }
}

} // namespace sinfer
