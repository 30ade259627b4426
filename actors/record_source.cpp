#include "actors/record_source.hpp"

#include <cerrno>
#include <cmath>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include <caf/all.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "policies/credit.hpp"
#include "policies/load_profile.hpp"
#include "policies/partitioning.hpp"
#include "runtime/json_text.hpp"
#include "runtime/record_template.hpp"

namespace sinfer {

namespace {

/// Records per (read) step before yielding the thread.
constexpr size_t step_records = 2048;
/// Records per chunk message.
constexpr size_t chunk_records = 256;
/// Spare capacity for simdjson's padding and appended fields, so later
/// stages parse and append without reallocating.
constexpr size_t spare_bytes = simdjson::SIMDJSON_PADDING + 64;

/// Bytes of an oversized line the dead letter keeps.
constexpr size_t oversized_prefix_bytes = 1024;

/// Splits a file descriptor into lines with its own buffer, so a read that
/// would block can be noticed (poll) before it happens. A line longer than
/// `max_line` bytes is never buffered whole: once the buffered part passes
/// the limit the reader keeps its first bytes (`oversized_prefix_bytes`, at
/// most `max_line`) and skips the rest up to the newline, so the buffer
/// never grows past max(`max_line` + 1, 64 KiB).
class line_reader {
public:
  enum class status { line, oversized, would_block, eof, error };

  line_reader(int fd, uint64_t max_line)
    : fd_(fd), max_line_(max_line), prefix_bytes_(std::min<uint64_t>(oversized_prefix_bytes, max_line)),
      buf_(1 << 16) {
  }

  /// The next line (without '\n') into `out`, valid until the next call.
  /// `oversized`: the line was longer than `max_line`; `out` holds its first
  /// bytes (cut at a UTF-8 character boundary) and `oversized_bytes()` its
  /// length. `timeout_ms` < 0 blocks; otherwise waits at most that long for
  /// input.
  status next(std::string_view& out, int timeout_ms) {
    for (;;) {
      auto* nl = static_cast<char*>(std::memchr(buf_.data() + begin_, '\n', end_ - begin_));
      if (nl != nullptr) {
        out = std::string_view{buf_.data() + begin_, static_cast<size_t>(nl - (buf_.data() + begin_))};
        begin_ = static_cast<size_t>(nl - buf_.data()) + 1;
        consumed_ += out.size() + 1;
        if (skipping_ || out.size() > max_line_)
          return oversized(out);
        return status::line;
      }
      if (eof_) {
        if (begin_ == end_ && !skipping_)
          return status::eof;
        out = std::string_view{buf_.data() + begin_, end_ - begin_};
        begin_ = end_;
        consumed_ += out.size();
        if (skipping_ || out.size() > max_line_)
          return oversized(out);
        return status::line;
      }
      if (skipping_ || end_ - begin_ > max_line_) {
        // Too long already: keep its start, drop what is buffered, read on
        // to its end without keeping it.
        if (!skipping_) {
          skipping_ = true;
          skipped_ = 0;
          prefix_.assign(buf_.data() + begin_, std::min<size_t>(end_ - begin_, prefix_bytes_));
        }
        skipped_ += end_ - begin_; // counted in consumed() once the line ends
        begin_ = end_ = 0;
      }
      if (begin_ > 0) { // compact
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == buf_.size()) // one partial line fills it, and it is within max_line
        buf_.resize(std::max<size_t>(buf_.size() + 1, std::min<uint64_t>(buf_.size() * 2, max_line_ + 1)));
      if (timeout_ms >= 0) {
        pollfd pfd{fd_, POLLIN, 0};
        int ready = ::poll(&pfd, 1, timeout_ms);
        if (ready == 0 || (ready < 0 && errno == EINTR))
          return status::would_block;
      }
      auto n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return status::error;
      if (n == 0)
        eof_ = true;
      end_ += static_cast<size_t>(n);
    }
  }

  /// Bytes of the lines returned so far (newlines included).
  uint64_t consumed() const noexcept {
    return consumed_;
  }

  /// The length of the last `oversized` line, without its newline.
  uint64_t oversized_bytes() const noexcept {
    return oversized_bytes_;
  }

private:
  /// Ends an oversized line whose last (or only) part is `out`; `out`
  /// becomes its kept prefix.
  status oversized(std::string_view& out) {
    if (!skipping_) {
      skipped_ = 0;
      prefix_.assign(out.data(), std::min<size_t>(out.size(), prefix_bytes_));
    }
    oversized_bytes_ = skipped_ + out.size();
    consumed_ += skipped_;
    skipping_ = false;
    skipped_ = 0;
    // Never end the kept prefix inside a UTF-8 sequence.
    auto keep = prefix_.size();
    if (oversized_bytes_ > keep) {
      size_t back = 0;
      while (back < 3 && back < keep && (static_cast<unsigned char>(prefix_[keep - 1 - back]) & 0xC0) == 0x80)
        ++back;
      if (back < keep) {
        auto lead = static_cast<unsigned char>(prefix_[keep - 1 - back]);
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (need > back + 1) // the sequence is cut: drop its bytes
          prefix_.resize(keep - 1 - back);
      }
    }
    out = prefix_;
    return status::oversized;
  }

  int fd_;
  uint64_t max_line_;
  /// Bytes of an oversized line kept for its dead letter.
  size_t prefix_bytes_;
  std::vector<char> buf_;
  uint64_t consumed_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  /// Inside an oversized line: its bytes dropped so far, its first bytes.
  bool skipping_ = false;
  uint64_t skipped_ = 0;
  std::string prefix_;
  uint64_t oversized_bytes_ = 0;
};

struct source_state {
  std::shared_ptr<const job_config> cfg;
  std::vector<record_consumer> subtasks;
  failure_listener supervisor;
  std::shared_ptr<job_counters> counters;
  /// Checkpoints: the coordinator (invalid when off) and where a restore
  /// starts.
  checkpoint_listener coordinator;
  std::shared_ptr<const checkpoint_context> checkpoints;
  /// Bytes of the file skipped at a restore (line sources).
  uint64_t base_bytes = 0;
  /// The position before the held record (what a barrier records while a
  /// record is read but not yet handed to its subtask).
  source_position held_position;

  std::vector<send_credit> credit;
  std::vector<record_chunk> pending;
  int fd = -1;
  bool owns_fd = false;
  std::optional<line_reader> lines;
  uint64_t line_no = 0;
  std::optional<record_template> tmpl;
  uint64_t generated = 0;
  caf::actor_clock::time_point started;
  /// generator: the pacing (`source.profile`, or `source.rate` as an
  /// open-ended constant profile); empty: as fast as credit allows.
  std::optional<load_profile> pace;
  /// `source.profile` given: once it holds no more records the generator
  /// ends at the profile's end (a trailing pause is kept).
  bool pace_ends = false;
  /// The last `pace->due` answer, for record `due_index` (one call per record).
  uint64_t due_index = std::numeric_limits<uint64_t>::max();
  std::optional<caf::timespan> due_cached;
  uint64_t routed = 0; // records assigned a subtask so far
  std::optional<record> held;
  uint32_t held_target = 0;
  bool exhausted = false;
  bool finished = false;
  bool step_queued = false;
  bool wake_armed = false;
  simdjson::dom::parser parser;

  ~source_state() {
    if (owns_fd && fd >= 0)
      ::close(fd);
  }
};

using source_pointer = source_actor::stateful_pointer<source_state>;

enum class next_status { record, none_yet, no_input_yet, exhausted };

int64_t ns_since_epoch(caf::actor_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// When the paced generator may go on, after the start: when its next
/// record is due, or, once the profile holds no more records, when the
/// profile ends; empty: the profile holds no more records and has no end to
/// wait for. Rounded up to the nanosecond by the profile, and the one
/// helper of both the check in next_record and the wake-up timer in step,
/// so they agree (a wake-up a nanosecond early would find the record not
/// due and re-arm for ever).
std::optional<caf::timespan> pace_offset(source_state& st) {
  if (st.due_index != st.generated) {
    st.due_index = st.generated;
    st.due_cached = st.pace->due(st.generated);
  }
  if (st.due_cached)
    return st.due_cached;
  if (st.pace_ends)
    return st.pace->total_length();
  return std::nullopt;
}

/// Reads the next record into `out`; `now` is the step's clock reading
/// (refreshed here where a record may wait: paced records, stdin).
next_status next_record(source_pointer self, record& out, caf::actor_clock::time_point now) {
  auto& st = self->state;
  auto& src = st.cfg->source;
  if (st.counters->stop_requested.load(std::memory_order_relaxed))
    return next_status::exhausted; // asked to stop: end the input here, drain the rest
  if (src.kind == source_kind::generator) {
    if (st.pace) {
      auto offset = pace_offset(st);
      bool profile_done = !st.due_cached;
      if (!offset || (!profile_done && st.generated >= src.count))
        return next_status::exhausted;
      if (self->clock().now() < st.started + *offset)
        return next_status::none_yet;
      if (profile_done)
        return next_status::exhausted; // the profile's end has come
      out.born_ns = ns_since_epoch(st.started + *offset); // when due, however late it is read
    } else {
      if (st.generated >= src.count)
        return next_status::exhausted;
      out.born_ns = ns_since_epoch(now);
    }
    out.id = record_id{0, 0, st.generated};
    out.json.clear();
    out.json.reserve(128 + spare_bytes);
    st.tmpl->render(st.generated, src.seed, out.json);
    ++st.generated;
    return next_status::record;
  }
  // A pipe may hold no input for a long time: wait briefly, and not at all
  // while records are waiting to be sent (they go out first).
  int timeout_ms = -1;
  if (src.kind == source_kind::stdin_lines) {
    bool waiting = false;
    for (auto& chunk : st.pending)
      waiting = waiting || !chunk.empty();
    timeout_ms = waiting ? 0 : 100;
  }
  for (;;) {
    std::string_view raw;
    auto status = st.lines->next(raw, timeout_ms);
    if (status == line_reader::status::would_block)
      return next_status::no_input_yet;
    if (status == line_reader::status::oversized) {
      // Handed on as a failed record (in its place in the order): the sink
      // dead-letters it with the start of the line.
      ++st.line_no;
      out.id = record_id{0, 0, st.line_no};
      out.born_ns = ns_since_epoch(src.kind == source_kind::stdin_lines ? self->clock().now() : now);
      out.json.assign(raw.data(), raw.size());
      out.error = "source \"" + src.name + "\": line " + std::to_string(st.line_no) + " is "
                  + std::to_string(st.lines->oversized_bytes()) + " bytes, over source.max-record-bytes ("
                  + std::to_string(src.max_record_bytes) + "); not read as a record (the dead letter holds its first "
                  + std::to_string(raw.size()) + " bytes)";
      return next_status::record;
    }
    if (status != line_reader::status::line) {
      if (status == line_reader::status::error)
        self->send(st.supervisor, fail_atom::value,
                   "source \"" + src.name + "\": read error after line "
                     + std::to_string(st.line_no) + ": " + std::strerror(errno));
      return next_status::exhausted;
    }
    ++st.line_no;
    auto line = trim(raw);
    if (line.empty())
      continue; // blank lines are not records
    out.id = record_id{0, 0, st.line_no};
    // A file is read within the step; stdin may have waited for this line.
    out.born_ns = ns_since_epoch(src.kind == source_kind::stdin_lines ? self->clock().now() : now);
    out.json.clear();
    out.json.reserve(line.size() + spare_bytes);
    out.json.assign(line.data(), line.size());
    return next_status::record;
  }
}

/// Where the source stands: before the held record if there is one, else
/// after everything read.
source_position position(const source_state& st) {
  if (st.held)
    return st.held_position;
  source_position p;
  p.bytes = st.base_bytes + (st.lines ? st.lines->consumed() : 0);
  p.lines = st.line_no;
  p.generated = st.generated;
  p.routed = st.routed;
  return p;
}

uint32_t route(source_pointer self, const record& rec) {
  auto& st = self->state;
  auto p = st.cfg->parallelism;
  auto index = st.routed++;
  if (p == 1)
    return 0;
  if (st.cfg->partition_by.empty())
    return subtask_round_robin(index, p);
  simdjson::dom::object obj;
  if (st.parser.parse(rec.json).get(obj))
    return subtask_round_robin(index, p); // malformed: the first stage dead-letters it
  simdjson::dom::element key;
  if (obj.at_key(st.cfg->partition_by).get(key))
    return subtask_for_key("null", p);
  return subtask_for_key(simdjson::minify(key), p);
}

void flush(source_pointer self, uint32_t target) {
  auto& st = self->state;
  auto& chunk = st.pending[target];
  if (chunk.empty())
    return;
  st.counters->records_in.fetch_add(chunk.size(), std::memory_order_relaxed);
  self->send(st.subtasks[target], records_atom::value, uint32_t{0}, std::move(chunk));
  chunk = record_chunk{};
  chunk.reserve(chunk_records);
}

void finish(source_pointer self) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  if (st.coordinator)
    self->send(st.coordinator, ended_atom::value, encode_source_position(position(st)));
  for (auto& sub : st.subtasks)
    self->send(sub, eos_atom::value, uint32_t{0});
  self->quit();
}

void queue_step(source_pointer self) {
  if (self->state.step_queued)
    return;
  self->state.step_queued = true;
  self->send(self, read_atom::value);
}

/// Reads and routes up to `step_records` records, then flushes chunks and
/// decides what wakes the source next: its own step, credit, or the rate.
void step(source_pointer self) {
  auto& st = self->state;
  if (st.finished)
    return;
  bool blocked_on_credit = false;
  bool blocked_on_rate = false;
  auto now = self->clock().now();
  for (size_t n = 0; n < step_records; ++n) {
    if (!st.held) {
      if (st.exhausted)
        break;
      record rec;
      auto before = position(st);
      auto status = next_record(self, rec, now);
      if (status == next_status::exhausted) {
        st.exhausted = true;
        break;
      }
      if (status == next_status::none_yet) {
        blocked_on_rate = true;
        break;
      }
      if (status == next_status::no_input_yet)
        break; // flush what we have, then wait for input in a later step
      st.held_position = before;
      st.held_target = route(self, rec);
      st.held = std::move(rec);
    }
    // Start a chunk only with worthwhile credit (send_credit explains why).
    auto t = st.held_target;
    if (st.pending[t].empty() && !st.credit[t].may_start_chunk()) {
      blocked_on_credit = true;
      break;
    }
    if (!st.credit[t].take()) {
      blocked_on_credit = true;
      break;
    }
    auto& chunk = st.pending[st.held_target];
    chunk.push_back(std::move(*st.held));
    st.held.reset();
    if (chunk.size() >= chunk_records)
      flush(self, st.held_target);
  }
  for (uint32_t i = 0; i < st.pending.size(); ++i)
    flush(self, i);
  if (st.exhausted && !st.held) {
    finish(self);
    return;
  }
  if (blocked_on_credit)
    return; // a credit grant calls step again
  if (st.pace) { // how late the source reads: its next record was due then
    if (auto offset = pace_offset(st)) {
      auto late = self->clock().now() - (st.started + *offset);
      st.counters->source_lag_ns.store(late.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(late).count() : 0,
                                       std::memory_order_relaxed);
    }
  }
  if (blocked_on_rate) {
    if (!st.wake_armed) {
      st.wake_armed = true;
      auto due = st.started + *pace_offset(st); // none_yet: there is an offset
      auto delay = due > self->clock().now() ? due - self->clock().now() : caf::timespan{0};
      self->delayed_send(self, delay, read_atom::value);
    }
    return;
  }
  queue_step(self);
}

source_actor::behavior_type source_behavior(source_pointer self, source_settings settings) {
  auto& st = self->state;
  st.cfg = std::move(settings.cfg);
  st.subtasks = std::move(settings.subtasks);
  st.supervisor = std::move(settings.supervisor);
  st.counters = std::move(settings.counters);
  st.coordinator = std::move(settings.coordinator);
  st.checkpoints = std::move(settings.checkpoints);
  st.credit.assign(st.subtasks.size(), send_credit{chunk_records});
  st.pending.resize(st.subtasks.size());
  st.started = self->clock().now();
  auto& src = st.cfg->source;
  std::string problem;
  if (src.kind == source_kind::generator) {
    st.tmpl = record_template::parse(src.record_template, problem);
    if (!st.tmpl)
      problem = "source.template: " + problem;
    if (!src.profile.empty()) {
      st.pace.emplace(src.profile);
      st.pace_ends = true;
    } else if (src.rate > 0) {
      st.pace = load_profile::constant(src.rate);
    }
  } else if (src.kind == source_kind::stdin_lines) {
    st.fd = STDIN_FILENO;
    st.lines.emplace(st.fd, src.max_record_bytes);
  } else {
    st.fd = ::open(src.path.c_str(), O_RDONLY | O_CLOEXEC);
    st.owns_fd = st.fd >= 0;
    if (st.fd < 0)
      problem = "source \"" + src.name + "\": cannot open \"" + src.path + "\": " + std::strerror(errno);
    else
      st.lines.emplace(st.fd, src.max_record_bytes);
  }
  if (problem.empty() && st.checkpoints && st.checkpoints->restored > 0) {
    // Go on where the restored checkpoint's barrier left.
    auto& at = st.checkpoints->source;
    st.routed = at.routed;
    if (src.kind == source_kind::generator) {
      st.generated = at.generated;
      if (st.pace) // as if the records before were on time: the first one due is due now
        if (auto offset = pace_offset(st))
          st.started = self->clock().now() - *offset;
    } else if (struct stat info{}; ::fstat(st.fd, &info) != 0 || static_cast<uint64_t>(info.st_size) < at.bytes
               || ::lseek(st.fd, static_cast<off_t>(at.bytes), SEEK_SET) != static_cast<off_t>(at.bytes)) {
      errno = errno == 0 ? EINVAL : errno;
      problem = "source \"" + src.name + "\": cannot seek to byte " + std::to_string(at.bytes) + " of \""
                + src.path + "\" (checkpoint " + std::to_string(st.checkpoints->restored)
                + "; was the file replaced?): " + std::strerror(errno);
    } else {
      st.base_bytes = at.bytes;
      st.line_no = at.lines;
    }
  }
  if (!problem.empty()) {
    self->send(st.supervisor, fail_atom::value, problem);
    st.finished = true;
  } else {
    for (uint32_t i = 0; i < st.subtasks.size(); ++i)
      self->send(st.subtasks[i], connect_atom::value,
                 caf::actor_cast<record_producer>(self), i, uint32_t{0});
  }
  return {
    [=](credit_atom, uint32_t port, uint64_t n) {
      auto& st = self->state;
      if (port >= st.credit.size())
        return;
      st.credit[port].grant(n);
      if (!st.step_queued && !st.wake_armed)
        step(self);
    },
    [=](read_atom) {
      auto& st = self->state;
      st.step_queued = false;
      st.wake_armed = false;
      step(self);
    },
    [=](checkpoint_atom, uint64_t epoch) {
      // The barrier goes after every record handed out so far: chunks being
      // filled go first.
      auto& st = self->state;
      if (st.finished)
        return; // ended: the coordinator hears it from (ended)
      for (uint32_t i = 0; i < st.pending.size(); ++i)
        flush(self, i);
      for (auto& sub : st.subtasks)
        self->send(sub, barrier_atom::value, uint32_t{0}, epoch);
      self->send(st.coordinator, ack_atom::value, epoch, std::string{source_part_name()},
                 encode_source_position(position(st)));
    },
  };
}

} // namespace

source_actor spawn_record_source(caf::actor_system& sys, source_settings settings) {
  if (settings.cfg->source.kind == source_kind::stdin_lines)
    return sys.spawn<caf::detached>(source_behavior, std::move(settings));
  return sys.spawn(source_behavior, std::move(settings));
}

} // namespace sinfer
