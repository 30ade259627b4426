// Checkpointed jobs in one process: snapshot encoding, the job-shape check,
// the config keys, exactly-once parts, resuming from a finished checkpoint,
// restoring a hand-made mid-run checkpoint (source position, held records,
// call log), and torn checkpoints skipped. The kill -9 test is crash_test.

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "runtime/checkpointing.hpp"
#include "runtime/config_loader.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/part_files.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

namespace {

/// Lines of every visible part `PREFIX-*.jsonl` in `dir`, in epoch order;
/// `pending` counts hidden pending parts.
std::vector<std::string> part_lines(const std::string& dir, const std::string& prefix, size_t* pending = nullptr) {
  std::vector<std::string> names;
  for (auto& name : list_dir(dir)) {
    if (name.rfind(prefix + "-", 0) == 0 && name.size() > 6 && name.substr(name.size() - 6) == ".jsonl")
      names.push_back(name);
    if (pending != nullptr && name.rfind("." + prefix + "-", 0) == 0)
      ++*pending;
  }
  std::vector<std::string> lines;
  for (auto& n : names)
    for (auto& l : read_lines(dir + "/" + n))
      lines.push_back(l);
  return lines;
}

/// The "id" of each line, counted.
std::map<int64_t, int> id_counts(const std::vector<std::string>& lines) {
  simdjson::dom::parser parser;
  std::map<int64_t, int> out;
  for (auto& l : lines)
    ++out[int_field(parse_object(parser, l), "id")];
  return out;
}

std::string review_lines(int from, int to) {
  static const char* texts[] = {"great product", "terrible service", "it was ok", "love it"};
  std::string text;
  for (int i = from; i < to; ++i)
    text += R"({"id":)" + std::to_string(i) + R"(,"review":")" + texts[i % 4] + "\"}\n";
  return text;
}

job_config checkpointed_job(const temp_dir& dir, uint32_t parallelism, const model_registry& models) {
  checkpoint_config ck;
  ck.dir = dir.file("state");
  ck.interval = std::chrono::milliseconds{2};
  ck.retain = 50;
  ck.call_log = call_log_mode::all; // in-process models too, so the log is exercised here
  return job_builder{"ckpt"}
    .parallelism(parallelism)
    .source_jsonl(dir.file("in.jsonl"))
    .model(model_spec{"sentiment", "keyword-classifier"}
             .input("text", "review")
             .output("label", "sentiment")
             .max_concurrent_operations(64)
             .batch_max_size(8))
    .model(model_spec{"length", "text-length"}.input("text", "sentiment").output("length", "sentiment_length"))
    .stage("sentiment")
    .stage("length")
    .sink_jsonl(dir.file("out"))
    .dead_letter(dir.file("dead"))
    .checkpoint(ck)
    .build(models);
}

} // namespace

TEST_CASE("snapshot codec: what is encoded decodes, damaged bytes are errors") {
  source_position p{12345, 67, 0, 89};
  source_position back;
  std::string error;
  REQUIRE(decode_source_position(encode_source_position(p), back, error));
  CHECK(back.bytes == 12345);
  CHECK(back.lines == 67);
  CHECK(back.routed == 89);

  std::vector<held_snapshot> held(2);
  held[0].rec.id = record_id{0, 3, 1ull << 40};
  held[0].rec.json = R"({"a":"\u00e9"})";
  held[0].rec.born_ns = 99;
  held[0].link = 2;
  held[1].rec.json = "{}";
  held[1].rec.error = "stage 1: bad";
  held[1].done = true;
  auto bytes = encode_held(held);
  std::vector<held_snapshot> decoded;
  REQUIRE(decode_held(bytes, decoded, error));
  REQUIRE(decoded.size() == 2);
  CHECK(decoded[0].rec.id.partition == 3);
  CHECK(decoded[0].rec.id.offset == 1ull << 40);
  CHECK(decoded[0].rec.json == held[0].rec.json);
  CHECK(decoded[0].rec.born_ns == 99);
  CHECK(decoded[0].link == 2);
  CHECK_FALSE(decoded[0].done);
  CHECK(decoded[1].done);
  CHECK(decoded[1].rec.error == "stage 1: bad");

  std::vector<std::string> outputs{R"("positive")", "0.9", ""};
  std::vector<std::string> outputs_back;
  REQUIRE(decode_outputs(encode_outputs(outputs), outputs_back, error));
  CHECK(outputs_back == outputs);

  struct row {
    const char* name;
    std::string bytes;
    const char* error;
  };
  std::vector<row> rows = {
    {"empty", "", "empty"},
    {"another format version", std::string(1, '\x07') + bytes.substr(1), "format version 7"},
    {"truncated in a string", bytes.substr(0, bytes.size() - 3), "longer than the bytes left"},
    {"truncated in a number", encode_source_position(p).substr(0, 2), "truncated number"},
    {"trailing bytes", bytes + "x", "trailing bytes"},
    {"a count larger than the bytes", std::string{"\x01\xff\xff\xff\xff\x0f", 6}, "count larger"},
    {"a string longer than the bytes", std::string{"\x01\x01\x00\x00\x00\x7f\x00\x00\x00", 9}, "longer than the bytes"},
  };
  for (auto& r : rows) {
    std::string name = r.name, why;
    CAPTURE(name);
    CHECK_FALSE(decode_held(r.bytes, decoded, why));
    CAPTURE(why);
    CHECK(why.find(r.error) != std::string::npos);
  }
  // A call key names the model, the record and its inputs.
  std::string a[] = {R"("x")"}, b[] = {R"("y")"};
  CHECK(call_log_key("m", record_id{0, 0, 5}, a, 1) != call_log_key("m", record_id{0, 0, 5}, b, 1));
  CHECK(call_log_key("m", record_id{0, 0, 5}, a, 1) != call_log_key("n", record_id{0, 0, 5}, a, 1));
  CHECK(call_log_key("m", record_id{0, 0, 5}, a, 1) == call_log_key("m", record_id{0, 0, 5}, a, 1));
  CHECK(call_log_key("m", record_id{0, 0, 5}, a, 1).rfind("m/0/0/5/", 0) == 0);
}

TEST_CASE("checkpoint config: keys, defaults and what cannot be checkpointed") {
  auto models = model_registry::with_builtins();
  auto base = [](const std::string& source, const std::string& sink, const std::string& ck) {
    return R"({"source": )" + source + R"(, "models": {"m": {"provider": "in-process", "model": "keyword-classifier",
      "input": {"text": "t"}, "output": {"label": "l"}}}, "stages": ["m"], "sink": )" + sink
           + (ck.empty() ? "" : R"(, "checkpoint": )" + ck) + "}";
  };
  std::string gen = R"({"type": "generator", "count": 10})", file = R"({"type": "jsonl", "path": "o"})";
  auto ok = parse_job_config(base(gen, file, R"({"dir": "ck", "interval": "250ms", "retain": 5, "call-log": false})"),
                             "job.json", models);
  REQUIRE(ok.config);
  CHECK(ok.config->checkpoint.enabled());
  CHECK(ok.config->checkpoint.interval == std::chrono::milliseconds{250});
  CHECK(ok.config->checkpoint.retain == 5);
  CHECK(ok.config->checkpoint.call_log == call_log_mode::off);
  CHECK(ok.config->checkpoint.timeout == std::chrono::seconds{60});
  auto off = parse_job_config(base(gen, file, ""), "job.json", models);
  REQUIRE(off.config);
  CHECK_FALSE(off.config->checkpoint.enabled());
  for (auto [text, mode] : {std::pair{R"("remote")", call_log_mode::remote}, {R"("all")", call_log_mode::all},
                            {"true", call_log_mode::all}, {R"("off")", call_log_mode::off}}) {
    auto res = parse_job_config(base(gen, file, std::string{R"({"dir": "ck", "call-log": )"} + text + "}"), "job.json",
                                models);
    REQUIRE(res.config);
    CHECK(res.config->checkpoint.call_log == mode);
  }
  CHECK(parse_job_config(base(gen, file, R"({"dir": "ck"})"), "job.json", models).config->checkpoint.call_log
        == call_log_mode::remote);

  struct row {
    const char* name;
    std::string json;
    const char* error;
  };
  std::vector<row> rows = {
    {"no dir", base(gen, file, R"({"interval": "1s"})"), "job.json: checkpoint.dir: missing required key"},
    {"a bad interval", base(gen, file, R"({"dir": "ck", "interval": 5})"), "checkpoint.interval: expected a duration"},
    {"retain 0", base(gen, file, R"({"dir": "ck", "retain": 0})"), "checkpoint.retain"},
    {"an unknown call-log", base(gen, file, R"({"dir": "ck", "call-log": "some"})"), "checkpoint.call-log"},
    {"a typo", base(gen, file, R"({"dir": "ck", "intervall": "1s"})"), "checkpoint.intervall"},
    {"stdin", base(R"({"type": "stdin"})", file, R"({"dir": "ck"})"), "source.type: \"stdin\" cannot be read again"},
    {"stdout", base(gen, R"({"type": "stdout"})", R"({"dir": "ck"})"), "sink.type: \"stdout\" cannot take back"},
  };
  for (auto& r : rows) {
    std::string name = r.name;
    CAPTURE(name);
    auto res = parse_job_config(r.json, "job.json", models);
    CHECK_FALSE(res.config);
    std::string all;
    for (auto& e : res.errors)
      all += e + "\n";
    CAPTURE(all);
    CHECK(all.find(r.error) != std::string::npos);
  }
}

TEST_CASE("job fingerprint: a changed shape is named key by key") {
  auto models = model_registry::with_builtins();
  temp_dir dir;
  auto a = checkpointed_job(dir, 2, models);
  auto b = checkpointed_job(dir, 3, models);
  CHECK(fingerprint_mismatch(job_fingerprint(a), job_fingerprint(a)).empty());
  CHECK(fingerprint_mismatch(job_fingerprint(a), job_fingerprint(b)) == "job.parallelism was 2, is now 3");
  auto c = a;
  c.stages.pop_back();
  CHECK(fingerprint_mismatch(job_fingerprint(a), job_fingerprint(c)) == "stages was [sentiment, length], is now [sentiment]");
  auto d = a;
  d.models.at("sentiment").max_concurrent_operations = 7; // policies may change between runs
  CHECK(fingerprint_mismatch(job_fingerprint(a), job_fingerprint(d)).empty());
}

TEST_CASE("checkpointed job: exactly-once parts, then a rerun resumes after the input's end") {
  auto models = model_registry::with_builtins();
  temp_dir dir;
  write_file(dir.file("in.jsonl"), review_lines(0, 3000));
  auto cfg = checkpointed_job(dir, 2, models);
  run_options opts;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto report = run_job(cfg, models, opts);
  REQUIRE_MESSAGE(report.ok, report.reason);
  size_t pending = 0;
  auto lines = part_lines(dir.file("out"), "part", &pending);
  CHECK(pending == 0);
  CHECK(lines.size() == 3000);
  auto ids = id_counts(lines);
  CHECK(ids.size() == 3000);
  CHECK(std::all_of(ids.begin(), ids.end(), [](auto& kv) { return kv.second == 1; }));
  CHECK(lines.front().find(R"("sentiment_length":)") != std::string::npos);
  auto completed = opts.counters->checkpoints_completed.load();
  CHECK(completed >= 1); // at least the final one
  CHECK(opts.counters->restored_from.load() == 0);
  CHECK(opts.counters->calls_logged.load() == 2 * 3000); // two stages

  // More input arrives: the next run restores the final checkpoint and
  // reads only the new lines.
  write_file(dir.file("in.jsonl"), review_lines(0, 3500));
  run_options again;
  again.counters = std::make_shared<job_counters>(cfg.stages.size());
  report = run_job(cfg, models, again);
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 500);
  CHECK(again.counters->restored_from.load() >= completed);
  ids = id_counts(part_lines(dir.file("out"), "part"));
  CHECK(ids.size() == 3500);
  CHECK(std::all_of(ids.begin(), ids.end(), [](auto& kv) { return kv.second == 1; }));

  // Another shape is refused with what changed; the output is untouched.
  auto wider = checkpointed_job(dir, 3, models);
  report = run_job(wider, models, {});
  CHECK_FALSE(report.ok);
  CHECK(report.reason.find("job.parallelism was 2, is now 3") != std::string::npos);
  CHECK(report.reason.find("--fresh") != std::string::npos);
  CHECK(part_lines(dir.file("out"), "part").size() == 3500);

  // --fresh starts over: the old parts go, every line is written once.
  run_options fresh;
  fresh.restore.fresh = true;
  report = run_job(wider, models, fresh);
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 3500);
  CHECK(id_counts(part_lines(dir.file("out"), "part")).size() == 3500);
  CHECK(part_lines(dir.file("out"), "part").size() == 3500);

  // The input replaced by a shorter file: the restored position is past its
  // end, a clear error rather than a silent end.
  write_file(dir.file("in.jsonl"), review_lines(0, 10));
  report = run_job(wider, models, {});
  CHECK_FALSE(report.ok);
  CHECK(report.reason.find("cannot seek to byte") != std::string::npos);
  CHECK(report.reason.find("was the file replaced?") != std::string::npos);

  // An unknown --from-checkpoint lists the ones there are.
  run_options unknown;
  unknown.restore.from = 999999;
  report = run_job(wider, models, unknown);
  CHECK_FALSE(report.ok);
  CHECK(report.reason.find("--from-checkpoint 999999") != std::string::npos);
  CHECK(report.reason.find("checkpoints there: ") != std::string::npos);
}

TEST_CASE("restore: the source goes on from its position, held records come back, the call log answers") {
  auto models = model_registry::with_builtins();
  temp_dir dir;
  auto text = review_lines(1, 21); // ids 1..20 on lines 1..20
  write_file(dir.file("in.jsonl"), text);
  auto cfg = checkpointed_job(dir, 1, models);
  cfg.stages = {"sentiment"};
  cfg.checkpoint.interval = std::chrono::hours{1}; // only the final checkpoint
  // A checkpoint taken after line 10 left the source: lines 1-8 were
  // written (published), line 9 was in a call, line 10 had its result.
  size_t bytes = 0;
  for (int n = 0; n < 10; ++n)
    bytes = text.find('\n', bytes) + 1;
  std::string error;
  {
    auto store = state_store::open(cfg.checkpoint.dir + "/state", error);
    REQUIRE(store);
    checkpoint_data c;
    c.id = 4;
    c.job_fingerprint = job_fingerprint(cfg);
    c.parts[source_part_name()] = encode_source_position(source_position{bytes, 10, 0, 10});
    auto lines = read_lines(dir.file("in.jsonl"));
    std::vector<held_snapshot> held(2);
    held[0].rec.id = record_id{0, 0, 9};
    held[0].rec.json = lines[8];
    held[1].rec.id = record_id{0, 0, 10};
    held[1].rec.json = R"({"id":10,"review":"love it","sentiment":"from-the-checkpoint"})";
    held[1].done = true;
    c.parts[operator_part_name(0, 0)] = encode_held(held);
    REQUIRE(store->write_checkpoint(c, error));
    // Line 9's call completed after the checkpoint: the log holds its result.
    std::string input[] = {R"("terrible service")"};
    call_log_writer log{cfg.checkpoint.dir + "/calls", "r1p1", "stage-0-subtask-0"};
    ::mkdir((cfg.checkpoint.dir + "/calls").c_str(), 0755);
    REQUIRE(log.append(5, {{call_log_key("sentiment@keyword-classifier", record_id{0, 0, 9}, input, 1),
                            encode_outputs(std::vector<std::string>{R"("from-the-log")"})}},
                       false, error));
    // Line 12's calls failed for good after the checkpoint: replayed as
    // that failure (a dead letter), not tried again.
    std::string input12[] = {R"("great product")"};
    REQUIRE(log.append(5, {{call_log_key("sentiment@keyword-classifier", record_id{0, 0, 12}, input12, 1),
                            std::string{"\x02"} + "server_error: HTTP 500 (after 4 attempts)"}},
                       false, error));
    // An entry of a record the checkpoint covers is never asked for.
    REQUIRE(log.append(4, {{"sentiment/0/0/3/0000000000000000", encode_outputs({"1"})}}, false, error));
    // A torn checkpoint after it (its manifest never written) is skipped.
    checkpoint_data torn = c;
    torn.id = 6;
    store->write_torn_checkpoint_for_test(torn, false);
  }
  std::vector<std::string> notes;
  {
    auto ctx = open_checkpoints(cfg, {}, notes, error);
    REQUIRE_MESSAGE(ctx, error);
    CHECK(ctx->restored == 4);
    CHECK(ctx->replay->size() == 3);
  }
  std::string all_notes;
  for (auto& n : notes)
    all_notes += n + "\n";
  CHECK(all_notes.find("resuming from checkpoint 4") != std::string::npos);
  // (the torn checkpoint has no manifest: it is not even listed)

  run_options opts;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto report = run_job(cfg, models, opts);
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(opts.counters->restored_from.load() == 4);
  CHECK(opts.counters->calls_replayed.load() == 2);
  auto dead = part_lines(dir.file("dead"), "dead");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find(R"("offset":12,)") != std::string::npos);
  CHECK(dead[0].find("server_error: HTTP 500 (after 4 attempts)") != std::string::npos);
  auto lines = part_lines(dir.file("out"), "part");
  // 9 and 10 from the checkpoint, then 11..20 read again (12 dead-lettered).
  REQUIRE(lines.size() == 11);
  CHECK(lines[0].find(R"("id":9,)") != std::string::npos);
  CHECK(lines[0].find(R"("sentiment":"from-the-log")") != std::string::npos);
  CHECK(lines[1].find(R"("sentiment":"from-the-checkpoint")") != std::string::npos);
  CHECK(lines[2].find(R"("id":11,)") != std::string::npos);
  CHECK(lines[2].find(R"("sentiment":"positive")") != std::string::npos); // "love it", scored by the model
  CHECK(lines[10].find(R"("id":20,)") != std::string::npos);
  // The parts are numbered after the restored checkpoint.
  CHECK(read_lines(dir.file("out") + "/part-000000000005.jsonl").size() == 11);
}

TEST_CASE("torn and damaged checkpoints: the restore takes the newest one that verifies") {
  auto models = model_registry::with_builtins();
  temp_dir dir;
  write_file(dir.file("in.jsonl"), review_lines(0, 200));
  auto cfg = checkpointed_job(dir, 2, models);
  auto report = run_job(cfg, models, {});
  REQUIRE_MESSAGE(report.ok, report.reason);
  std::string error;
  uint64_t good = 0;
  {
    auto store = state_store::open(cfg.checkpoint.dir + "/state", error);
    REQUIRE(store);
    auto latest = store->latest_checkpoint();
    REQUIRE(latest);
    good = latest->id;
    // A checkpoint that was damaged after its write (a part overwritten):
    // its manifest no longer matches.
    auto damaged = *latest;
    damaged.id = good + 1;
    damaged.parts[source_part_name()] = encode_source_position(source_position{0, 0, 0, 0});
    store->write_torn_checkpoint_for_test(damaged, true);
  }
  std::vector<std::string> notes;
  auto ctx = open_checkpoints(cfg, {}, notes, error);
  REQUIRE_MESSAGE(ctx, error);
  CHECK(ctx->restored == good);
  std::string all;
  for (auto& n : notes)
    all += n + "\n";
  CAPTURE(all);
  CHECK(all.find("skipped a damaged checkpoint") != std::string::npos);
  ctx.reset();
  // The run after it reads nothing again (the good one was the final one).
  report = run_job(cfg, models, {});
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 0);
  CHECK(part_lines(dir.file("out"), "part").size() == 200);
}
