/// Fuzz target: the job config loader, `parse_job_config`
/// (runtime/config_loader.hpp) with the built-in in-process models.
///
/// Input: the config file's text, as a user would write it (the corpus
/// holds the examples' configs and edge cases).
/// Invariants: a config or errors, never both or neither; every error line
/// names the file; a config that loaded passes `check_job_config` again
/// unchanged (defaults already filled, nothing left to complain about).

#include "fuzz_support.hpp"

#include "runtime/config_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sinfer;
  fuzz::quiet();
  static const model_registry models = model_registry::with_builtins();
  const std::string file = "fuzz.json";
  auto result = parse_job_config(fuzz::as_text(data, size), file, models);
  FUZZ_CHECK(result.config.has_value() != !result.errors.empty());
  for (auto& line : result.errors)
    FUZZ_CHECK(line.rfind(file + ": ", 0) == 0);
  if (result.config) {
    auto again = *result.config;
    again.file.clear();
    FUZZ_CHECK(check_job_config(again, models).empty());
  }
  return 0;
}
