#include "sim/scenario.hpp"

#include <cerrno>
#include <cstring>

#include "policies/load_profile.hpp"
#include "runtime/json_reader.hpp"

namespace sinfer {

using namespace config_reading;

namespace {

// --- JSON merge patch ---------------------------------------------------

/// Writes `patch` merged over `target` (nullptr: no target, which merges as
/// an empty object).
void write_merged(std::string& out, const element* target, element patch) {
  object p;
  if (patch.get(p)) { // not an object: replaces
    out += simdjson::minify(patch);
    return;
  }
  object t;
  bool target_is_object = target != nullptr && !target->get(t);
  out += '{';
  bool first = true;
  auto member = [&](std::string_view key) {
    if (!first)
      out += ',';
    first = false;
    append_json_string(out, key);
    out += ':';
  };
  if (target_is_object) {
    for (auto field : t) {
      element pv;
      if (p.at_key(field.key).get(pv) != simdjson::SUCCESS) {
        member(field.key);
        out += simdjson::minify(field.value);
      } else if (!pv.is_null()) {
        member(field.key);
        write_merged(out, &field.value, pv);
      }
    }
  }
  for (auto field : p) {
    element tv;
    if (target_is_object && t.at_key(field.key).get(tv) == simdjson::SUCCESS)
      continue;
    if (field.value.is_null())
      continue;
    member(field.key);
    write_merged(out, nullptr, field.value);
  }
  out += '}';
}

// --- servers --------------------------------------------------------------

const std::vector<std::string> fault_kind_names = {"outage", "brownout", "rate-limit", "errors", "resets", "crash"};

void read_fault(error_log& log, element e, const std::string& path, sim_fault& f) {
  object obj;
  if (e.get(obj)) {
    log.add(path, "expected a fault object such as {\"type\": \"outage\", \"at\": \"2m\", \"for\": \"3m\"}, got "
                    + kind_of(e));
    return;
  }
  object_reader r{log, obj, path};
  r.require("type", "one of outage, brownout, rate-limit, errors, resets, crash");
  r.choice("type", fault_kind_names, f.kind);
  std::chrono::nanoseconds at{0}, length{-1}, until{-1};
  r.duration("at", at);
  r.duration("for", length);
  r.duration("until", until);
  if (length.count() >= 0 && until.count() >= 0)
    r.error("until", "give either `for` or `until`, not both");
  f.from = at;
  if (length.count() >= 0)
    f.to = at + length;
  else if (until.count() >= 0)
    f.to = until;
  if (f.to <= f.from)
    r.error(length.count() >= 0 ? "for" : "until", "expected the fault to end after it starts");
  r.boolean("hang", f.hang);
  r.number("slowdown", 0.0, 1e6, f.slowdown);
  std::chrono::nanoseconds retry_after{f.retry_after};
  r.duration("retry-after", retry_after);
  f.retry_after = std::chrono::duration_cast<std::chrono::milliseconds>(retry_after);
  r.number("share", 0.0, 1.0, f.share);
  r.integer("max-calls", 0, 1000000000, f.max_calls);
  auto only = [&](const char* key, std::initializer_list<sim_fault_kind> kinds) {
    if (!r.has(key))
      return;
    for (auto k : kinds)
      if (f.kind == k)
        return;
    r.error(key, std::string{"not a setting of a "} + to_string(f.kind) + " fault");
  };
  only("hang", {sim_fault_kind::outage});
  only("slowdown", {sim_fault_kind::brownout});
  only("retry-after", {sim_fault_kind::rate_limit});
  only("share", {sim_fault_kind::errors, sim_fault_kind::resets, sim_fault_kind::crash});
  only("max-calls", {sim_fault_kind::crash});
}

/// Reads the keys present in `obj` over `s` (faults are appended).
void read_server(error_log& log, object obj, const std::string& path, sim_server_config& s) {
  object_reader r{log, obj, path};
  r.integer("slots", 1, 100000, s.slots);
  r.duration("base", s.base);
  r.duration("per-record", s.per_record);
  r.number("jitter", 0.0, 10.0, s.jitter);
  r.integer("max-queue", 0, 100000000, s.max_queue);
  r.duration("refusal-time", s.refusal_time);
  element faults;
  if (r.get("faults", faults)) {
    simdjson::dom::array list;
    if (faults.get(list)) {
      r.error("faults", "expected an array of fault objects, got " + kind_of(faults));
      return;
    }
    size_t i = 0;
    for (auto f : list) {
      sim_fault fault;
      read_fault(log, f, r.path("faults") + "[" + std::to_string(i++) + "]", fault);
      s.faults.push_back(fault);
    }
  }
}

/// Every endpoint of the job's models, as "model/endpoint".
std::vector<std::string> endpoint_names(const job_config& job) {
  std::vector<std::string> out;
  for (auto& kv : job.models)
    for (auto& ep : kv.second.endpoints)
      out.push_back(kv.first + "/" + ep.name);
  return out;
}

/// Checks each entry of `servers` once: a known model or endpoint, and
/// valid settings.
void check_servers(error_log& log, object servers, const job_config& job) {
  std::vector<std::string> known{"default"};
  for (auto& kv : job.models)
    known.push_back(kv.first);
  for (auto& name : endpoint_names(job))
    known.push_back(name);
  for (auto field : servers) {
    std::string key{field.key};
    object level;
    if (std::find(known.begin(), known.end(), key) == known.end())
      log.add("servers." + key, "no model or endpoint (model/endpoint) of that name in the job"
                                  + did_you_mean(key, known));
    else if (field.value.get(level))
      log.add("servers." + key, "expected a server object, got " + kind_of(field.value));
    else {
      sim_server_config scratch;
      read_server(log, level, "servers." + key, scratch);
    }
  }
}

/// The simulated server of each endpoint: `default`, then the model's
/// entry, then the endpoint's, each over the one before (faults add up).
std::map<std::string, sim_server_config> servers_of(const object* servers, const job_config& job) {
  std::map<std::string, sim_server_config> out;
  error_log ignored; // check_servers reported them
  for (auto& kv : job.models) {
    for (auto& ep : kv.second.endpoints) {
      auto name = kv.first + "/" + ep.name;
      sim_server_config s; // seeded by the simulator, from the run's seed
      for (auto& key : {std::string{"default"}, kv.first, name}) {
        object level;
        if (servers != nullptr && servers->at_key(key).get(level) == simdjson::SUCCESS)
          read_server(ignored, level, "servers." + key, s);
      }
      out.emplace(name, std::move(s));
    }
  }
  return out;
}

// --- the scenario -----------------------------------------------------------

std::string resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || dir.empty())
    return path;
  return dir + "/" + path;
}

/// The job JSON the scenario runs: the job file (or inline object) with the
/// scenario's load in place of its source.
bool job_text(error_log& log, object_reader& r, const std::string& dir, std::string& job_json,
              std::string& job_file) {
  element job;
  if (!r.get("job", job))
    return false;
  std::string_view path;
  if (!job.get(path)) {
    job_file = resolve(dir, std::string{path});
    if (!read_text_file(job_file, job_json)) {
      r.error("job", "cannot read the job config \"" + job_file + "\"");
      return false;
    }
    return true;
  }
  if (job.type() != simdjson::dom::element_type::OBJECT) {
    r.error("job", "expected a job config file name or an inline job object, got " + kind_of(job));
    return false;
  }
  job_json = simdjson::minify(job);
  job_file = log.file + " (job)";
  return true;
}

} // namespace

std::string json_merge_patch(std::string_view target, std::string_view patch) {
  simdjson::dom::parser tp, pp;
  simdjson::padded_string tt{target}, pt{patch};
  element t, p;
  if (tp.parse(tt).get(t) || pp.parse(pt).get(p))
    return {};
  std::string out;
  write_merged(out, &t, p);
  return out;
}

scenario_result parse_scenario(std::string_view json, const std::string& file, const std::string& dir,
                               const model_registry& models) {
  scenario_result result;
  error_log log{file, {}};
  simdjson::dom::parser parser;
  simdjson::padded_string text{json};
  element root;
  object top;
  if (auto err = parser.parse(text).get(root)) {
    log.add("", std::string{"invalid JSON: "} + simdjson::error_message(err));
  } else if (root.get(top)) {
    log.add("", "expected a JSON object at the top level, got " + kind_of(root));
  }
  if (!log.lines.empty()) {
    result.errors = std::move(log.lines);
    return result;
  }
  scenario_config sc;
  sc.file = file;
  std::string job_json, job_file;
  std::string job_set = "{}";
  std::optional<std::string> load_source;
  uint32_t load_parallelism = 0;
  object servers;
  bool have_servers = false;
  std::vector<std::pair<std::string, std::string>> variants; // label, patch
  std::vector<std::pair<std::string, std::chrono::nanoseconds>> phase_ends;
  {
    object_reader r{log, top, ""};
    r.string("name", sc.name);
    r.string("description", sc.description, false);
    r.integer("seed", 0, std::numeric_limits<int64_t>::max(), sc.seed);
    r.duration("sample-interval", sc.sample_interval);
    if (sc.sample_interval < std::chrono::milliseconds{1})
      r.error("sample-interval", "expected at least 1ms");
    r.duration("drain-limit", sc.drain_limit);
    r.require("job", "the job config file to simulate, or an inline job object");
    job_text(log, r, dir, job_json, job_file);
    object set;
    if (r.sub_object("set", set))
      job_set = simdjson::minify(set);
    object load;
    if (r.sub_object("load", load)) {
      object_reader l{log, load, "load"};
      element profile, tmpl;
      std::string source = R"({"type":"generator")";
      l.require("profile", "the load profile: segments such as {\"for\": \"10m\", \"rate\": 1000}");
      if (l.get("profile", profile)) {
        source += ",\"profile\":" + simdjson::minify(profile);
      }
      if (l.get("template", tmpl))
        source += ",\"template\":" + simdjson::minify(tmpl);
      source += "}";
      l.integer("parallelism", 1, 1024, load_parallelism);
      load_source = source;
    }
    have_servers = r.sub_object("servers", servers);
    element phases;
    if (r.get("phases", phases)) {
      simdjson::dom::array list;
      if (phases.get(list)) {
        r.error("phases", "expected an array of {\"name\": ..., \"until\": ...}, got " + kind_of(phases));
      } else {
        size_t i = 0;
        for (auto p : list) {
          auto path = "phases[" + std::to_string(i++) + "]";
          object po;
          if (p.get(po)) {
            log.add(path, "expected {\"name\": ..., \"until\": ...}, got " + kind_of(p));
            continue;
          }
          object_reader pr{log, po, path};
          std::string name;
          std::chrono::nanoseconds until{-1};
          pr.require("name", "the phase's name");
          pr.string("name", name);
          pr.duration("until", until);
          if (!pr.has("until") && i != list.size())
            pr.error("until", "missing (only the last phase may leave it out: it runs to the end)");
          phase_ends.emplace_back(name, until);
        }
      }
    }
    element compare;
    if (r.get("compare", compare)) {
      simdjson::dom::array list;
      if (compare.get(list) || list.size() < 2) {
        r.error("compare", "expected an array of at least two {\"label\": ..., \"set\": {...}} objects, got "
                             + kind_of(compare));
      } else {
        size_t i = 0;
        for (auto c : list) {
          auto path = "compare[" + std::to_string(i++) + "]";
          object co;
          if (c.get(co)) {
            log.add(path, "expected {\"label\": ..., \"set\": {...}}, got " + kind_of(c));
            continue;
          }
          object_reader cr{log, co, path};
          std::string label;
          cr.require("label", "the name this config has in the summary and report");
          cr.string("label", label);
          object set;
          std::string patch = "{}";
          if (cr.sub_object("set", set))
            patch = simdjson::minify(set);
          for (auto& v : variants)
            if (v.first == label)
              cr.error("label", "\"" + label + "\" is used twice");
          variants.emplace_back(label, patch);
        }
      }
    }
  }
  if (variants.empty())
    variants.emplace_back("", "{}");
  if (!log.lines.empty()) {
    result.errors = std::move(log.lines);
    return result;
  }
  // Each variant: the job with the load's source (replaced whole: merging a
  // generator over a file source would keep its path) and parallelism, then
  // the scenario's `set`, then the variant's.
  auto loaded = job_json;
  if (load_source) {
    loaded = json_merge_patch(loaded, R"({"source":null})");
    loaded = json_merge_patch(loaded, "{\"source\":" + *load_source + "}");
  }
  if (load_parallelism > 0)
    loaded = json_merge_patch(loaded, "{\"job\":{\"parallelism\":" + std::to_string(load_parallelism) + "}}");
  for (size_t v = 0; v < variants.size(); ++v) {
    auto merged = json_merge_patch(json_merge_patch(loaded, job_set), variants[v].second);
    auto label = variants[v].first;
    auto where = job_file + (label.empty() ? std::string{} : " with compare \"" + label + "\"");
    auto job = parse_job_config(merged, where, models);
    if (!job.config) {
      for (auto& e : job.errors)
        log.lines.push_back(e);
      continue;
    }
    scenario_variant sv;
    sv.label = label;
    sv.job = std::move(*job.config);
    auto& src = sv.job.source;
    if (src.kind == source_kind::stdin_lines)
      log.add(load_source ? "set" : "job", "a stdin source cannot be simulated (it reads on a thread of its own); "
                                          "give a load (\"load\": {\"profile\": [...]})");
    if (sv.job.checkpoint.enabled())
      log.add("job", where + " has \"checkpoint\": checkpoints are not simulated; remove it, or add "
                            "\"set\": {\"checkpoint\": null}");
    // How long the load lasts: the profile, or count / rate; 0 (a file, or a
    // generator without pacing) when the input ends as fast as credit allows.
    std::chrono::nanoseconds length{0};
    if (src.kind == source_kind::generator && !src.profile.empty())
      length = load_profile{src.profile}.total_length();
    else if (src.kind == source_kind::generator && src.rate > 0)
      length = std::chrono::nanoseconds{static_cast<int64_t>(static_cast<double>(src.count) / src.rate * 1e9)};
    sc.load_length = std::max(sc.load_length, length);
    sc.variants.push_back(std::move(sv));
  }
  // Servers name endpoints of any variant's job.
  if (have_servers && !sc.variants.empty()) {
    job_config all;
    for (auto& v : sc.variants)
      for (auto& kv : v.job.models) {
        auto& eps = all.models[kv.first].endpoints;
        for (auto& ep : kv.second.endpoints)
          if (std::none_of(eps.begin(), eps.end(), [&](const endpoint_config& e) { return e.name == ep.name; }))
            eps.push_back(ep);
      }
    check_servers(log, servers, all);
  }
  for (auto& v : sc.variants)
    v.servers = servers_of(have_servers ? &servers : nullptr, v.job);
  if (sc.name.empty()) {
    auto slash = file.find_last_of('/');
    sc.name = file.substr(slash == std::string::npos ? 0 : slash + 1);
    auto dot = sc.name.rfind(".json");
    if (dot != std::string::npos)
      sc.name.erase(dot);
  }
  std::chrono::nanoseconds from{0};
  for (auto& p : phase_ends) {
    auto to = p.second.count() >= 0 ? p.second : std::chrono::nanoseconds::max();
    if (to <= from)
      log.add("phases", "phase \"" + p.first + "\" must end after the one before it");
    sc.phases.push_back(scenario_phase{p.first, from, to});
    from = to;
  }
  if (!log.lines.empty()) {
    result.errors = std::move(log.lines);
    return result;
  }
  result.scenario = std::move(sc);
  return result;
}

scenario_result load_scenario(const std::string& path, const model_registry& models) {
  std::string text;
  if (!read_text_file(path, text)) {
    scenario_result r;
    r.errors.push_back(path + ": cannot read the scenario file: " + std::strerror(errno));
    return r;
  }
  auto slash = path.find_last_of('/');
  auto dir = slash == std::string::npos ? std::string{} : path.substr(0, slash);
  return parse_scenario(text, path, dir, models);
}

} // namespace sinfer
