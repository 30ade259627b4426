// The quickstart job, built with the C++ API instead of a config file, plus a
// model of our own: an in-process callable registered next to the built-ins.
//
//   programmatic_job OUT.jsonl [RECORDS]

#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.jsonl [RECORDS]\n", argv[0]);
    return 2;
  }
  uint64_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;

  auto models = sinfer::model_registry::with_builtins();
  // A custom model: shouts its input (an uppercase copy of a string).
  sinfer::in_process_model shout;
  shout.inputs = {"text"};
  shout.outputs = {"shout"};
  shout.compute = [](const sinfer::call_request& in, sinfer::call_result& out) {
    out.values.resize(in.rows);
    for (uint32_t row = 0; row < in.rows; ++row) {
      std::string v = in.at(row, 0);
      for (auto& c : v)
        if (c >= 'a' && c <= 'z')
          c = static_cast<char>(c - 'a' + 'A');
      out.values[row] = v;
    }
  };
  models.add("shout", shout);

  try {
    auto cfg = sinfer::job_builder{"programmatic"}
                 .parallelism(2)
                 .source_generator(count, R"({"id":"${i}","review":"${pick:great product, fast delivery|terrible service, never again|it was ok}"})")
                 .model(sinfer::model_spec{"sentiment", "keyword-classifier"}
                          .input("text", "review")
                          .output("label", "sentiment")
                          .output("score", "confidence"))
                 .model(sinfer::model_spec{"loud", "shout"}.input("text", "review"))
                 .stage("sentiment")
                 .stage("loud")
                 .sink_jsonl(argv[1])
                 .build(models);
    auto report = sinfer::run_job(cfg, models);
    if (!report.ok) {
      std::fprintf(stderr, "job failed: %s\n", report.reason.c_str());
      return 1;
    }
    std::fprintf(stderr, "programmatic job: %llu in, %llu out, %llu dead-lettered\n",
                 static_cast<unsigned long long>(report.records_in),
                 static_cast<unsigned long long>(report.records_out),
                 static_cast<unsigned long long>(report.dead_lettered));
    return report.records_out == count ? 0 : 1;
  } catch (const sinfer::invalid_job& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
