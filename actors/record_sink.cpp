#include "runtime/base64.hpp"
#include "actors/record_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

#include <caf/all.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "policies/credit.hpp"
#include "runtime/json_text.hpp"
#include "runtime/part_files.hpp"

namespace sinfer {

namespace {

/// Something a port delivered while it waits at a barrier (alignment).
struct port_event {
  enum kind_t { records, barrier, eos } kind = records;
  record_chunk chunk;
  uint64_t epoch = 0;
};

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

  // Checkpoints on (exactly-once output): lines go to the pending parts of
  // the current epoch; a port whose barrier arrived waits (its events
  // queue, its credit stays here) until every port's has.
  std::shared_ptr<const checkpoint_context> checkpoints;
  checkpoint_listener coordinator;
  std::unique_ptr<part_files> out_parts;
  std::unique_ptr<part_files> dead_parts;
  uint64_t epoch = 0;
  std::vector<char> at_barrier;
  uint32_t barriers = 0;
  std::vector<std::deque<port_event>> queued;
  /// Sealed parts waiting for their checkpoint's commit.
  std::vector<uint64_t> sealed;
  /// Every port ended and the last part is sealed: the epoch of the final
  /// checkpoint the sink waits for (0: not yet).
  uint64_t final_epoch = 0;

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

/// Appends `s` as a JSON string even when it is not valid UTF-8 (a record
/// the source read as bytes, a cut server message): each byte that is not
/// part of a valid UTF-8 sequence becomes U+FFFD. False when one did (the
/// string in the file then differs from `s`).
bool append_text(std::string& out, std::string_view s) {
  if (simdjson::validate_utf8(s.data(), s.size())) {
    append_json_string(out, s);
    return true;
  }
  std::string fixed;
  fixed.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    while (len <= 4 && i + len <= s.size() && !simdjson::validate_utf8(s.data() + i, len))
      ++len;
    if (len <= 4 && i + len <= s.size()) {
      fixed.append(s.data() + i, len);
      i += len;
    } else {
      fixed += "\xEF\xBF\xBD"; // U+FFFD REPLACEMENT CHARACTER
      ++i;
    }
  }
  append_json_string(out, fixed);
  return false;
}

void write_dead_letter(sink_pointer self, const record& rec) {
  auto& st = self->state;
  if (st.counters->events) // built only for an event log: dead letters can come in storms
    st.counters->emit(job_event{"dead-letter", {}}
                        .text("source", st.cfg->source.name)
                        .number("partition", rec.id.partition)
                        .number("offset", static_cast<double>(rec.id.offset))
                        .text("reason", rec.error));
  if (st.cfg->dead_letter_path.empty()) { // counted only (the simulator)
    ++st.figures.dead_lettered;
    return;
  }
  if (st.dead == nullptr && !st.dead_parts) {
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
  append_text(line, rec.error);
  line += ",\"record\":";
  // A record that is not valid UTF-8 (the source passes bytes on as read)
  // is shown with U+FFFD in "record"; its exact bytes are in
  // "record_base64", so nothing is lost and the line stays valid JSON.
  if (!append_text(line, rec.json)) {
    line += ",\"record_base64\":\"";
    append_base64(line, rec.json);
    line += '"';
  }
  line += "}";
  if (st.dead_parts) {
    std::string error;
    if (!st.dead_parts->append(line, error))
      fail(self, "dead-letter.path: " + error);
  } else {
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), st.dead);
  }
  ++st.figures.dead_lettered;
}

void finish(sink_pointer self) {
  auto& st = self->state;
  if (st.checkpoints) {
    if (!st.failed)
      self->send(st.supervisor, done_atom::value, st.figures);
    self->quit();
    return;
  }
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

/// Writes a chunk from subtask `in_port` and owes its credit back.
void write_chunk(sink_pointer self, uint32_t in_port, record_chunk& chunk) {
      auto& st = self->state;
      uint64_t written = 0;
      uint64_t dead = 0;
      // End-to-end latency: one clock read per chunk.
      auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(self->clock().now().time_since_epoch()).count();
      if (st.out_parts) {
        std::string error;
        for (auto& rec : chunk) {
          if (rec.failed()) {
            write_dead_letter(self, rec);
            ++dead;
            continue;
          }
          if (!st.out_parts->append(rec.json, error)) {
            fail(self, "sink.path: " + error);
            break;
          }
          st.counters->end_to_end.record(std::chrono::nanoseconds{now_ns - rec.born_ns});
          ++written;
        }
      } else if (st.out != nullptr || st.discard) {
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
    }

/// Seals the parts of the current epoch and begins the next.
bool seal_epoch(sink_pointer self) {
  auto& st = self->state;
  std::string error;
  // The coordinator fsyncs the parts on its own thread before the
  // checkpoint completes: the sink goes on writing meanwhile.
  if (!st.out_parts->seal(error, false) || !st.dead_parts->seal(error, false)) {
    fail(self, "sink: " + error);
    return false;
  }
  st.sealed.push_back(st.epoch);
  return true;
}

void begin_epoch(sink_pointer self, uint64_t epoch) {
  auto& st = self->state;
  st.epoch = epoch;
  std::string error;
  if (!st.out_parts->begin(epoch, error) || !st.dead_parts->begin(epoch, error))
    fail(self, "sink: " + error);
}

void on_event(sink_pointer self, uint32_t port, port_event ev);

/// Every port's barrier of `epoch` arrived: the part of `epoch` holds
/// exactly the lines before it.
void aligned(sink_pointer self, uint64_t epoch) {
  auto& st = self->state;
  if (epoch != st.epoch)
    spdlog::warn("sink: barrier {} arrived while writing part {}", epoch, st.epoch);
  if (!seal_epoch(self))
    return;
  self->send(st.coordinator, ack_atom::value, epoch, std::string{}, std::string{});
  begin_epoch(self, epoch + 1);
  st.barriers = 0;
  std::fill(st.at_barrier.begin(), st.at_barrier.end(), 0);
  for (uint32_t p = 0; p < st.queued.size(); ++p)
    while (!st.at_barrier[p] && !st.queued[p].empty()) {
      auto ev = std::move(st.queued[p].front());
      st.queued[p].pop_front();
      on_event(self, p, std::move(ev));
    }
}

void on_event(sink_pointer self, uint32_t port, port_event ev) {
  auto& st = self->state;
  if (port >= st.queued.size() || st.failed)
    return;
  if (st.at_barrier[port]) {
    st.queued[port].push_back(std::move(ev));
    return;
  }
  switch (ev.kind) {
    case port_event::records:
      write_chunk(self, port, ev.chunk);
      return;
    case port_event::barrier:
      st.at_barrier[port] = 1;
      if (++st.barriers == st.upstream.size())
        aligned(self, ev.epoch);
      return;
    case port_event::eos:
      if (++st.ended < st.upstream.size())
        return;
      // Every subtask ended: the last part waits for the final checkpoint.
      if (!seal_epoch(self))
        return;
      st.final_epoch = st.epoch;
      self->send(st.coordinator, final_atom::value, st.epoch);
      return;
  }
}

/// Checkpoint `epoch` is durable: its parts and the older sealed ones
/// become visible.
void commit(sink_pointer self, uint64_t epoch) {
  auto& st = self->state;
  if (!st.checkpoints || st.failed)
    return;
  std::string error;
  auto it = st.sealed.begin();
  for (; it != st.sealed.end() && *it <= epoch; ++it)
    if (!st.out_parts->publish(*it, error) || !st.dead_parts->publish(*it, error)) {
      fail(self, "sink: " + error);
      return;
    }
  st.sealed.erase(st.sealed.begin(), it);
  if (st.final_epoch != 0 && epoch >= st.final_epoch)
    finish(self);
}

sink_actor::behavior_type sink_behavior(sink_pointer self, sink_settings settings) {
  auto& st = self->state;
  st.cfg = std::move(settings.cfg);
  st.supervisor = std::move(settings.supervisor);
  st.counters = std::move(settings.counters);
  st.checkpoints = std::move(settings.checkpoints);
  st.coordinator = std::move(settings.coordinator);
  st.upstream.resize(st.cfg->parallelism);
  st.upstream_port.resize(st.cfg->parallelism);
  st.owed.resize(st.cfg->parallelism);
  if (st.checkpoints) {
    st.out_parts = std::make_unique<part_files>(st.cfg->sink.path, output_part_prefix());
    st.dead_parts = std::make_unique<part_files>(st.cfg->dead_letter_path, dead_letter_part_prefix());
    st.at_barrier.assign(st.cfg->parallelism, 0);
    st.queued.resize(st.cfg->parallelism);
    begin_epoch(self, st.checkpoints->restored + 1);
  } else if (st.cfg->sink.kind == sink_kind::stdout_lines) {
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
      if (self->state.checkpoints)
        on_event(self, in_port, port_event{port_event::records, std::move(chunk), 0});
      else
        write_chunk(self, in_port, chunk);
    },
    [=](barrier_atom, uint32_t in_port, uint64_t epoch) {
      if (self->state.checkpoints)
        on_event(self, in_port, port_event{port_event::barrier, {}, epoch});
    },
    [=](commit_atom, uint64_t epoch) {
      commit(self, epoch);
    },
    [=](eos_atom, uint32_t in_port) {
      auto& st = self->state;
      if (st.checkpoints) {
        on_event(self, in_port, port_event{port_event::eos, {}, 0});
        return;
      }
      if (++st.ended == st.upstream.size() && (st.out != nullptr || st.discard))
        finish(self);
    },
  };
}

} // namespace

sink_actor spawn_record_sink(caf::actor_system& sys, sink_settings settings) {
  if (settings.cfg->sink.kind == sink_kind::stdout_lines)
    return sys.spawn<caf::detached>(sink_behavior, std::move(settings));
  return sys.spawn(sink_behavior, std::move(settings));
}

} // namespace sinfer
