#include "runtime/checkpointing.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "runtime/part_files.hpp"

namespace sinfer {

namespace {

std::map<std::string, std::string> lines_of(const std::string& fingerprint) {
  std::map<std::string, std::string> out;
  std::istringstream in{fingerprint};
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find(" = ");
    if (eq != std::string::npos)
      out[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

bool make_dir(const std::string& dir, const char* key, std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    error = std::string{key} + ": cannot make the directory \"" + dir + "\""
            + (ec ? ": " + ec.message() : std::string{": a file of that name exists"});
    return false;
  }
  return true;
}

} // namespace

std::string job_fingerprint(const job_config& cfg) {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) { out += key + " = " + value + "\n"; };
  line("job.parallelism", std::to_string(cfg.parallelism));
  line("job.partition-by", cfg.partition_by.empty() ? "(round-robin)" : cfg.partition_by);
  line("job.output-mode", cfg.mode == output_mode::ordered ? "ordered" : "unordered");
  auto& src = cfg.source;
  if (src.kind == source_kind::generator) {
    line("source.type", "generator");
    line("source.template", src.record_template);
    line("source.seed", std::to_string(src.seed));
  } else {
    line("source.type", src.kind == source_kind::jsonl ? "jsonl" : "stdin");
    line("source.path", src.path);
  }
  std::string stages = "[";
  for (size_t i = 0; i < cfg.stages.size(); ++i) {
    if (i > 0)
      stages += ", ";
    stages += cfg.stages[i];
    // The fallback chain: the operator's snapshot names a model by its place in it.
    auto it = cfg.models.find(cfg.stages[i]);
    for (size_t hops = 0; it != cfg.models.end() && it->second.on_failure == failure_action::fallback
                          && !it->second.fallback.empty() && hops < cfg.models.size();
         ++hops) {
      stages += " -> " + it->second.fallback;
      it = cfg.models.find(it->second.fallback);
    }
  }
  line("stages", stages + "]");
  return out;
}

std::string fingerprint_mismatch(const std::string& then, const std::string& now) {
  auto a = lines_of(then), b = lines_of(now);
  std::string out;
  for (auto& kv : b) {
    auto old = a.find(kv.first);
    auto was = old == a.end() ? std::string{"(not recorded)"} : old->second;
    if (was != kv.second)
      out += (out.empty() ? "" : "; ") + kv.first + " was " + was + ", is now " + kv.second;
  }
  return out;
}

std::shared_ptr<checkpoint_context> open_checkpoints(const job_config& cfg, const restore_choice& choice,
                                                     std::vector<std::string>& notes, std::string& error) {
  auto& ck = cfg.checkpoint;
  auto where = "checkpoint.dir \"" + ck.dir + "\"";
  if (choice.fresh) {
    std::error_code ec;
    auto removed = std::filesystem::remove_all(std::filesystem::path{ck.dir} / "state", ec);
    if (!ec)
      removed += std::filesystem::remove_all(std::filesystem::path{ck.dir} / "calls", ec);
    if (ec) {
      error = where + ": --fresh cannot remove the old state: " + ec.message();
      return nullptr;
    }
    if (removed > 0)
      notes.push_back("--fresh: removed the checkpoints and call log in " + ck.dir);
  }
  if (!make_dir(ck.dir, "checkpoint.dir", error))
    return nullptr;
  auto ctx = std::make_shared<checkpoint_context>();
  ctx->fingerprint = job_fingerprint(cfg);
  std::string problem;
  auto store = state_store::open(ck.dir + "/state", problem);
  if (!store) {
    error = problem;
    return nullptr;
  }
  ctx->store = std::move(store);
  std::optional<checkpoint_data> data;
  if (choice.from) {
    data = ctx->store->read_checkpoint(*choice.from, problem);
    if (!data) {
      std::string ids;
      for (auto id : ctx->store->checkpoint_ids())
        ids += (ids.empty() ? "" : ", ") + std::to_string(id);
      error = where + ": --from-checkpoint " + std::to_string(*choice.from) + ": " + problem
              + " (checkpoints there: " + (ids.empty() ? std::string{"none"} : ids) + ")";
      return nullptr;
    }
  } else if (!choice.fresh) {
    std::vector<std::string> skipped;
    data = ctx->store->latest_checkpoint(&skipped);
    for (auto& s : skipped)
      notes.push_back("skipped a damaged checkpoint: " + s);
  }
  if (data) {
    if (auto diff = fingerprint_mismatch(data->job_fingerprint, ctx->fingerprint); !diff.empty()) {
      error = where + ": checkpoint " + std::to_string(data->id)
              + " was taken by a job of another shape, so restoring it would be wrong: " + diff
              + ". Restore the old settings, or start over with --fresh (a new output)";
      return nullptr;
    }
    ctx->restored = data->id;
    for (auto& kv : data->parts) {
      std::string why;
      if (kv.first == source_part_name()) {
        if (!decode_source_position(kv.second, ctx->source, why)) {
          error = where + ": checkpoint " + std::to_string(data->id) + ": the source position is damaged: " + why;
          return nullptr;
        }
      } else if (kv.first == "finished") {
        ctx->restored_finished = true;
      } else {
        auto& held = ctx->held[kv.first];
        if (!decode_held(kv.second, held, why)) {
          error = where + ": checkpoint " + std::to_string(data->id) + ": part \"" + kv.first
                  + "\" is damaged: " + why;
          return nullptr;
        }
      }
    }
    // A restore from an older checkpoint rewrites what came after it.
    ctx->store->drop_checkpoints_after(data->id);
    notes.push_back("resuming from checkpoint " + std::to_string(data->id) + " in " + ck.dir
                    + (ctx->restored_finished ? " (taken at the end of the input)" : ""));
  } else if (!choice.fresh && !ctx->store->checkpoint_ids().empty()) {
    error = where + ": no checkpoint there can be read (every one is damaged); start over with --fresh";
    return nullptr;
  }
  if (!data)
    ctx->store->drop_checkpoints_after(0);
  // Settle the output parts: publish those the restored checkpoint covers,
  // delete the rest.
  struct out_dir {
    const std::string* dir;
    const char* key;
    const char* prefix;
  };
  for (auto od : {out_dir{&cfg.sink.path, "sink.path", output_part_prefix()},
                  out_dir{&cfg.dead_letter_path, "dead-letter.path", dead_letter_part_prefix()}}) {
    if (!make_dir(*od.dir, od.key, error))
      return nullptr;
    part_files parts{*od.dir, od.prefix};
    std::vector<std::string> actions;
    if (!parts.recover(ctx->restored, actions, problem)) {
      error = std::string{od.key} + ": " + problem;
      return nullptr;
    }
    for (auto& a : actions)
      notes.push_back(a);
  }
  // Calls completed after the restored checkpoint answer their records
  // again; older ones are covered by it.
  ctx->call_log_dir = ck.dir + "/calls";
  if (!make_dir(ctx->call_log_dir, "checkpoint.dir", error))
    return nullptr;
  ctx->call_log_run = new_call_log_run();
  auto replay = std::make_shared<std::unordered_map<std::string, std::string>>();
  if (ck.call_log != call_log_mode::off && !read_call_log(ctx->call_log_dir, *replay, notes, error))
    return nullptr;
  if (!replay->empty())
    notes.push_back("the call log holds " + std::to_string(replay->size())
                    + " results of calls made after the checkpoint: their records will not be sent again");
  ctx->replay = std::move(replay);
  return ctx;
}

} // namespace sinfer
