#include "actors/checkpoint_coordinator.hpp"

#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "runtime/part_files.hpp"

namespace sinfer {

namespace {

struct in_progress {
  uint64_t epoch = 0;
  caf::actor_clock::time_point started;
  std::map<std::string, std::string> parts;
  uint32_t acks = 0;
  bool source_acked = false;
};

struct coordinator_state {
  std::shared_ptr<const job_config> cfg;
  std::shared_ptr<checkpoint_context> ctx;
  failure_listener supervisor;
  std::shared_ptr<job_counters> counters;
  source_actor source;
  sink_actor sink;
  uint64_t next_epoch = 1;
  /// Acks that complete a checkpoint: source, every operator, sink.
  uint32_t expected = 0;
  std::optional<in_progress> pending;
  /// The source's position at the end of its input, once it ended.
  std::optional<std::string> ended;
  bool finished = false;
  /// The sink's parts (it seals them without fsync; they are synced here,
  /// before the checkpoint that publishes them is written).
  std::unique_ptr<part_files> out_parts, dead_parts;
  uint64_t synced_upto = 0;
};

using coordinator_pointer = coordinator_actor::stateful_pointer<coordinator_state>;

double millis_since(coordinator_pointer self, caf::actor_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(self->clock().now() - t).count();
}

void abandon(coordinator_pointer self, const std::string& why) {
  auto& st = self->state;
  st.counters->checkpoints_failed.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("job \"{}\": checkpoint {} abandoned: {}", st.cfg->name, st.pending->epoch, why);
  st.pending.reset();
}

/// Writes checkpoint `epoch` with `parts`; true when it is durable.
bool write(coordinator_pointer self, uint64_t epoch, std::map<std::string, std::string> parts,
           caf::actor_clock::time_point started, bool finished = false) {
  auto& st = self->state;
  std::string error;
  for (auto e = st.synced_upto + 1; e <= epoch; ++e)
    if (!st.out_parts->sync(e, error) || !st.dead_parts->sync(e, error)) {
      st.counters->checkpoints_failed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("job \"{}\": checkpoint {} failed: {}", st.cfg->name, epoch, error);
      return false;
    }
  st.synced_upto = epoch;
  checkpoint_data data;
  data.id = epoch;
  data.job_fingerprint = st.ctx->fingerprint;
  data.parts = std::move(parts);
  if (!st.ctx->store->write_checkpoint(data, error)) {
    st.counters->checkpoints_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("job \"{}\": checkpoint {} could not be written: {}", st.cfg->name, epoch, error);
    return false;
  }
  st.ctx->store->retain(st.cfg->checkpoint.retain);
  // Calls of this run's epochs up to this one are covered by it; at the
  // end, every run's are.
  prune_call_log(st.ctx->call_log_dir, st.ctx->call_log_run, epoch, finished);
  st.counters->checkpoints_completed.fetch_add(1, std::memory_order_relaxed);
  st.counters->checkpoint_duration.record(self->clock().now() - started);
  st.counters->emit(job_event{"checkpoint", {}}.number("id", static_cast<double>(epoch)).number("duration_ms", millis_since(self, started)).field("final", finished ? "true" : "false"));
  spdlog::debug("job \"{}\": checkpoint {} completed in {:.1f} ms ({} parts)", st.cfg->name, epoch,
                millis_since(self, started), data.parts.size());
  self->send(st.sink, commit_atom::value, epoch);
  return true;
}

void trigger(coordinator_pointer self) {
  auto& st = self->state;
  if (st.pending && self->clock().now() - st.pending->started >= st.cfg->checkpoint.timeout)
    abandon(self, "not complete after checkpoint.timeout ("
                    + std::to_string(st.cfg->checkpoint.timeout.count()) + " ms)");
  if (st.pending || st.ended || st.finished)
    return;
  in_progress p;
  p.epoch = st.next_epoch++;
  p.started = self->clock().now();
  st.pending = std::move(p);
  self->send(st.source, checkpoint_atom::value, st.pending->epoch);
}

coordinator_actor::behavior_type coordinator_behavior(coordinator_pointer self,
                                                      std::shared_ptr<const job_config> cfg,
                                                      std::shared_ptr<checkpoint_context> ctx,
                                                      failure_listener supervisor,
                                                      std::shared_ptr<job_counters> counters) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.ctx = std::move(ctx);
  st.supervisor = std::move(supervisor);
  st.counters = std::move(counters);
  st.next_epoch = st.ctx->restored + 1;
  st.synced_upto = st.ctx->restored;
  st.out_parts = std::make_unique<part_files>(st.cfg->sink.path, output_part_prefix());
  st.dead_parts = std::make_unique<part_files>(st.cfg->dead_letter_path, dead_letter_part_prefix());
  st.expected = 2 + st.cfg->parallelism * static_cast<uint32_t>(st.cfg->stages.size());
  return {
    [=](run_atom, source_actor source, sink_actor sink) {
      auto& st = self->state;
      st.source = std::move(source);
      st.sink = std::move(sink);
      self->delayed_send(self, st.cfg->checkpoint.interval, tick_atom::value);
    },
    [=](tick_atom) {
      auto& st = self->state;
      if (st.finished)
        return;
      trigger(self);
      self->delayed_send(self, st.cfg->checkpoint.interval, tick_atom::value);
    },
    [=](ack_atom, uint64_t epoch, std::string& part, std::string& bytes) {
      auto& st = self->state;
      if (!st.pending || st.pending->epoch != epoch)
        return; // a late ack of an abandoned checkpoint
      auto& p = *st.pending;
      if (part == source_part_name())
        p.source_acked = true;
      if (!part.empty())
        p.parts[part] = std::move(bytes);
      if (++p.acks < st.expected)
        return;
      auto done = std::move(p);
      st.pending.reset();
      write(self, done.epoch, std::move(done.parts), done.started);
    },
    [=](ended_atom, std::string& position) {
      auto& st = self->state;
      st.ended = std::move(position);
      // A checkpoint the source never saw cannot complete; the final one
      // takes its place (not a failure).
      if (st.pending && !st.pending->source_acked) {
        spdlog::debug("job \"{}\": checkpoint {} dropped: the input ended first", st.cfg->name, st.pending->epoch);
        st.pending.reset();
      }
    },
    [=](final_atom, uint64_t epoch) {
      auto& st = self->state;
      if (st.finished)
        return;
      st.finished = true;
      if (st.pending)
        abandon(self, "the job ended first");
      if (!st.ended) {
        self->send(st.supervisor, fail_atom::value,
                   "checkpoint: the sink ended before the source reported its end (protocol bug)");
        return;
      }
      std::map<std::string, std::string> parts;
      parts[source_part_name()] = *st.ended;
      parts["finished"] = "";
      if (!write(self, epoch, std::move(parts), self->clock().now(), true))
        self->send(st.supervisor, fail_atom::value,
                   "checkpoint: the final checkpoint " + std::to_string(epoch) + " could not be written to "
                     + st.cfg->checkpoint.dir + ", so the last output part stays unpublished (see the log)");
    },
  };
}

} // namespace

coordinator_actor spawn_checkpoint_coordinator(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                                               std::shared_ptr<checkpoint_context> checkpoints,
                                               failure_listener supervisor, std::shared_ptr<job_counters> counters) {
  return sys.spawn<caf::detached>(coordinator_behavior, std::move(cfg), std::move(checkpoints),
                                  std::move(supervisor), std::move(counters));
}

} // namespace sinfer
