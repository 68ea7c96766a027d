// A driver for libFuzzer targets without libFuzzer: runs every file of the corpus folders given
// on the command line, then a bounded number of random mutations of them (fixed seed, so a
// failure is reproducible). Exits non-zero only by crashing, as a fuzzer would.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::vector<uint8_t>> seeds;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(entry.path(), std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (seeds.empty()) seeds.push_back({});
  for (const auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  std::mt19937 rng(12345);
  constexpr int kRuns = 200000;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<uint8_t> b = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:
          if (!b.empty()) b[rng() % b.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          b.resize(rng() % 1200);
          break;
        case 2:
          b.insert(b.begin() + static_cast<long>(b.empty() ? 0 : rng() % b.size()),
                   static_cast<uint8_t>(rng()));
          break;
        default:
          if (!b.empty()) b.erase(b.begin() + static_cast<long>(rng() % b.size()));
          break;
      }
    }
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("%zu seeds and %d mutations ran without a crash\n", seeds.size(), kRuns);
  return 0;
}
