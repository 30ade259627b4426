#include "runtime/status_table.hpp"

#include <cstdio>
#include <vector>

#include <httplib.h>
#include <simdjson.h>

namespace sinfer {

namespace {

std::string cell(simdjson::dom::element e) {
  if (e.is_null())
    return "-";
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS)
    return std::string{s};
  bool b = false;
  if (e.get(b) == simdjson::SUCCESS)
    return b ? "yes" : "no";
  double d = 0;
  if (e.get(d) == simdjson::SUCCESS) {
    char buf[32];
    std::snprintf(buf, sizeof buf, d == static_cast<double>(static_cast<int64_t>(d)) ? "%.0f" : "%.1f", d);
    return buf;
  }
  return std::string{simdjson::minify(e)};
}

/// Columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i)
        width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

} // namespace

bool fetch_status(const std::string& url, std::string& body, std::string& error) {
  auto base = url;
  for (auto tail : {std::string{"/status"}, std::string{"/"}})
    if (base.size() >= tail.size() && base.compare(base.size() - tail.size(), tail.size(), tail) == 0)
      base.resize(base.size() - tail.size());
  httplib::Client client{base};
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(5, 0);
  auto res = client.Get("/status");
  if (!res) {
    error = "no answer from " + base + "/status: " + httplib::to_string(res.error());
    return false;
  }
  if (res->status != 200) {
    error = base + "/status answered HTTP " + std::to_string(res->status);
    return false;
  }
  body = res->body;
  return true;
}

std::string format_status_table(std::string_view json, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) {
    error = "not a /status page (not a JSON object)";
    return {};
  }
  auto at = [&](simdjson::dom::object o, const char* path) {
    simdjson::dom::element e;
    return o.at_pointer(path).get(e) == simdjson::SUCCESS ? cell(e) : std::string{"-"};
  };
  std::string out = "job \"" + at(root, "/job") + "\": " + (at(root, "/ready") == "yes" ? "running" : "not ready")
                    + "; records " + at(root, "/records/in") + " in, " + at(root, "/records/out") + " out, "
                    + at(root, "/records/dead_lettered") + " dead-lettered, " + at(root, "/records/in_flight")
                    + " in flight; " + at(root, "/restarts") + " restarts; checkpoints "
                    + at(root, "/checkpoints/completed") + " completed, " + at(root, "/checkpoints/failed")
                    + " failed\n\n";
  std::vector<std::vector<std::string>> stages{{"stage", "model", "records out", "calls", "retries", "failed"}};
  simdjson::dom::array arr;
  if (root["stages"].get(arr) == simdjson::SUCCESS)
    for (simdjson::dom::element e : arr) {
      simdjson::dom::object o;
      if (e.get(o) == simdjson::SUCCESS)
        stages.push_back({at(o, "/stage"), at(o, "/model"), at(o, "/records_out"), at(o, "/calls"), at(o, "/retries"),
                          at(o, "/failed")});
    }
  out += table(stages) + "\n";
  std::vector<std::vector<std::string>> endpoints{{"endpoint", "breaker", "subtasks open", "limit", "in flight",
                                                   "calls", "failures", "rate-limited", "latency ms", "queue",
                                                   "suspect"}};
  if (root["endpoints"].get(arr) == simdjson::SUCCESS)
    for (simdjson::dom::element e : arr) {
      simdjson::dom::object o;
      if (e.get(o) == simdjson::SUCCESS)
        endpoints.push_back({at(o, "/model") + "/" + at(o, "/endpoint"), at(o, "/breaker"),
                             at(o, "/subtask_breakers_open"), at(o, "/limit"), at(o, "/in_flight"), at(o, "/calls"),
                             at(o, "/failures"), at(o, "/rate_limited"), at(o, "/latency_ms"),
                             at(o, "/probe_queue_depth"), at(o, "/suspect")});
    }
  out += table(endpoints);
  return out;
}

} // namespace sinfer
