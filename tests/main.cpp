#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  // Tests assert on figures, not on logs: keep the output to warnings
  // (SINFER_TEST_LOG=debug shows everything).
  auto level = std::getenv("SINFER_TEST_LOG");
  spdlog::set_level(level != nullptr ? spdlog::level::from_str(level) : spdlog::level::warn);
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  return context.run();
}
