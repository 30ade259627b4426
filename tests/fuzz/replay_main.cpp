/// Runs a fuzz target's LLVMFuzzerTestOneInput once over every file given,
/// or every regular file of every directory given (sorted by name): the
/// regression replay of tests/fuzz/corpus/<target>/ in builds without
/// libFuzzer (tests/fuzz/CMakeLists.txt). A target that finds a broken
/// invariant aborts, so the ctest entry fails; the file being run is printed
/// first so the failing input is named.
///
///   fuzz_replay_<target> DIR_OR_FILE...

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path arg{argv[i]};
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (auto& entry : fs::directory_iterator{arg})
        if (entry.is_regular_file())
          files.push_back(entry.path());
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "fuzz replay: %s is neither a file nor a directory\n", argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE... (no input files found)\n", argv[0]);
    return 2;
  }
  std::sort(files.begin(), files.end());
  for (auto& path : files) {
    std::fprintf(stderr, "fuzz replay: %s\n", path.c_str());
    std::ifstream in{path, std::ios::binary};
    std::string bytes{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "fuzz replay: cannot read %s\n", path.c_str());
      return 2;
    }
    // A copy of exactly `size` bytes, as libFuzzer passes: ASan then sees a
    // read past the input's end.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::fprintf(stderr, "fuzz replay: %zu inputs ran\n", files.size());
  return 0;
}
