#include "actors/record_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <caf/all.hpp>

#include "policies/credit.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

struct sink_state {
  std::shared_ptr<const job_config> cfg;
  supervisor_actor supervisor;
  std::shared_ptr<job_counters> counters;
  std::vector<record_producer> upstream;
  std::vector<uint32_t> upstream_port;
  /// Credit written and not yet granted back, per subtask.
  std::vector<uint64_t> owed;
  uint32_t ended = 0;
  std::FILE* out = nullptr;
  std::FILE* dead = nullptr;
  /// sink.type discard: records are counted, nothing is written.
  bool discard = false;
  bool failed = false;
  sink_figures figures;
  std::string line;

  ~sink_state() {
    if (out != nullptr && out != stdout)
      std::fclose(out);
    if (dead != nullptr)
      std::fclose(dead);
  }
};

using sink_pointer = sink_actor::stateful_pointer<sink_state>;

void fail(sink_pointer self, const std::string& what) {
  auto& st = self->state;
  if (st.failed)
    return;
  st.failed = true;
  self->send(st.supervisor, fail_atom::value, what);
}

void write_dead_letter(sink_pointer self, const record& rec) {
  auto& st = self->state;
  if (st.cfg->dead_letter_path.empty()) { // counted only (the simulator)
    ++st.figures.dead_lettered;
    return;
  }
  if (st.dead == nullptr) {
    st.dead = std::fopen(st.cfg->dead_letter_path.c_str(), "wb");
    if (st.dead == nullptr) {
      fail(self, "dead-letter.path: cannot write \"" + st.cfg->dead_letter_path
                   + "\": " + std::strerror(errno));
      return;
    }
  }
  auto& line = st.line;
  line.clear();
  line += "{\"source\":";
  append_json_string(line, st.cfg->source.name);
  line += ",\"partition\":" + std::to_string(rec.id.partition);
  line += ",\"offset\":" + std::to_string(rec.id.offset);
  if (st.cfg->source.kind != source_kind::generator)
    line += ",\"line\":" + std::to_string(rec.id.offset);
  line += ",\"reason\":";
  append_json_string(line, rec.error);
  line += ",\"record\":";
  append_json_string(line, rec.json);
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), st.dead);
  ++st.figures.dead_lettered;
}

void finish(sink_pointer self) {
  auto& st = self->state;
  bool ok = st.discard || (std::fflush(st.out) == 0 && !std::ferror(st.out));
  if (st.out != stdout && st.out != nullptr) {
    ok = std::fclose(st.out) == 0 && ok;
    st.out = nullptr;
  }
  if (!ok)
    fail(self, "sink: writing \"" + (st.out == stdout ? std::string{"stdout"} : st.cfg->sink.path)
                 + "\" failed: " + std::strerror(errno));
  if (st.dead != nullptr) {
    bool dead_ok = std::fclose(st.dead) == 0;
    st.dead = nullptr;
    if (!dead_ok)
      fail(self, "dead-letter: writing \"" + st.cfg->dead_letter_path + "\" failed");
  }
  if (!st.failed)
    self->send(st.supervisor, done_atom::value, st.figures);
  self->quit();
}

sink_actor::behavior_type sink_behavior(sink_pointer self, std::shared_ptr<const job_config> cfg,
                                        supervisor_actor supervisor,
                                        std::shared_ptr<job_counters> counters) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.supervisor = std::move(supervisor);
  st.counters = std::move(counters);
  st.upstream.resize(st.cfg->parallelism);
  st.upstream_port.resize(st.cfg->parallelism);
  st.owed.resize(st.cfg->parallelism);
  if (st.cfg->sink.kind == sink_kind::stdout_lines) {
    st.out = stdout;
  } else if (st.cfg->sink.kind == sink_kind::discard) {
    st.discard = true;
  } else {
    st.out = std::fopen(st.cfg->sink.path.c_str(), "wb");
    if (st.out == nullptr)
      fail(self, "sink.path: cannot write \"" + st.cfg->sink.path + "\": " + std::strerror(errno));
    else
      std::setvbuf(st.out, nullptr, _IOFBF, 1 << 20);
  }
  return {
    [=](connect_atom, record_producer up, uint32_t out_port, uint32_t in_port) {
      auto& st = self->state;
      if (in_port >= st.upstream.size())
        return;
      st.upstream[in_port] = up;
      st.upstream_port[in_port] = out_port;
      self->send(up, credit_atom::value, out_port, uint64_t{st.cfg->sink_buffer});
    },
    [=](records_atom, uint32_t in_port, record_chunk& chunk) {
      auto& st = self->state;
      uint64_t written = 0;
      uint64_t dead = 0;
      // End-to-end latency: one clock read per chunk.
      auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(self->clock().now().time_since_epoch()).count();
      if (st.out != nullptr || st.discard) {
        for (auto& rec : chunk) {
          if (rec.failed()) {
            write_dead_letter(self, rec);
            ++dead;
            continue;
          }
          if (!st.discard) {
            rec.json.push_back('\n');
            std::fwrite(rec.json.data(), 1, rec.json.size(), st.out);
          }
          st.counters->end_to_end.record(std::chrono::nanoseconds{now_ns - rec.born_ns});
          ++written;
        }
      }
      // Flush when nothing else is queued: at high rates lines leave in big
      // writes, at low rates each chunk is visible at once (tail -f, pipes).
      if (st.out != nullptr && self->mailbox().empty()) {
        std::fflush(st.out);
        if (st.dead != nullptr)
          std::fflush(st.dead);
      }
      st.figures.written += written;
      st.counters->records_out.fetch_add(written, std::memory_order_relaxed);
      st.counters->dead_lettered.fetch_add(dead, std::memory_order_relaxed);
      // Credit goes back in grants of an eighth of the buffer: a message per
      // record at light load otherwise. The subtask still holds 7/8 of it.
      if (in_port < st.upstream.size() && st.upstream[in_port]) {
        auto& owed = st.owed[in_port];
        owed += chunk.size();
        if (owed >= std::max<uint64_t>(1, st.cfg->sink_buffer / 8)) {
          self->send(st.upstream[in_port], credit_atom::value, st.upstream_port[in_port], owed);
          owed = 0;
        }
      }
    },
    [=](eos_atom, uint32_t) {
      auto& st = self->state;
      if (++st.ended == st.upstream.size() && (st.out != nullptr || st.discard))
        finish(self);
    },
  };
}

} // namespace

sink_actor spawn_record_sink(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                             supervisor_actor supervisor, std::shared_ptr<job_counters> counters) {
  if (cfg->sink.kind == sink_kind::stdout_lines)
    return sys.spawn<caf::detached>(sink_behavior, std::move(cfg), std::move(supervisor),
                                    std::move(counters));
  return sys.spawn(sink_behavior, std::move(cfg), std::move(supervisor), std::move(counters));
}

} // namespace sinfer
