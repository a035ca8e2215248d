// Checks dequantize_row bit-exactly against gguf.quants.dequantize: reads the cases written by
// make_dequant_cases.py ("<type>.q" blocks, "<type>.expected" F32) and compares every float's
// bits. Exit 0 = all equal, 1 = mismatch or bad file, 77 = skip (no case file).
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "cpu/quant.hpp"
#include "gguf/gguf_file.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASES.gguf\n", argv[0]);
    return 2;
  }
  if (!std::filesystem::exists(argv[1])) {
    std::fprintf(stderr, "skipping: %s not found (python3 or gguf missing?)\n", argv[1]);
    return 77;
  }
  const char* types[] = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0",
                         "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
  int failures = 0;
  try {
    const auto file = ts::gguf::File::open(argv[1]);
    for (const char* name : types) {
      const auto* q = file->find_tensor(std::string(name) + ".q");
      const auto* e = file->find_tensor(std::string(name) + ".expected");
      if (!q || !e || e->type != ts::GgmlType::F32 || q->n_elements() != e->n_elements() ||
          std::string(ts::traits(q->type).name) != name) {
        std::fprintf(stderr, "%s: case tensors missing or malformed\n", name);
        ++failures;
        continue;
      }
      const int64_t n = q->n_elements();
      std::vector<float> got(static_cast<size_t>(n));
      ts::kernels::dequantize_row(q->type, q->data, got.data(), n);
      std::vector<float> want(static_cast<size_t>(n));
      std::memcpy(want.data(), e->data, size_t(n) * 4);
      if (std::memcmp(got.data(), want.data(), size_t(n) * 4) == 0) {
        std::printf("%-5s %" PRId64 " values bit-exact\n", name, n);
        continue;
      }
      for (int64_t i = 0; i < n; ++i) {
        uint32_t g, w;
        std::memcpy(&g, &got[size_t(i)], 4);
        std::memcpy(&w, &want[size_t(i)], 4);
        if (g != w) {
          std::fprintf(stderr, "%s: first mismatch at element %" PRId64
                       " (row %" PRId64 ", col %" PRId64 "): got %.9g (0x%08x), want %.9g (0x%08x)\n",
                       name, i, i / q->ne[0], i % q->ne[0], double(got[size_t(i)]), g,
                       double(want[size_t(i)]), w);
          break;
        }
      }
      ++failures;
    }
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "error: %s\n", ex.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
