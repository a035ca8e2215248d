// The KV cache refuses a context that cannot fit in memory, with the numbers in the message.
#include <gtest/gtest.h>

#include "kv/kv_cache.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

TEST(KvCache, BytesPerTokenIsTheTheory) {
  KvCache kv(30, 3, 64, 1024);  // SmolLM2-135M: K and V in fp16 per layer and KV head
  EXPECT_EQ(kv.bytes_per_token(), 30u * 2 * 3 * 64 * 2);
  kv.set_size(100);
  EXPECT_EQ(kv.bytes_used(), 100u * 30 * 2 * 3 * 64 * 2);
}

TEST(KvCache, LayersAndHeadsDoNotOverlap) {
  KvCache kv(2, 2, 8, 16);
  KvLayerView a = kv.layer(0), b = kv.layer(1);
  a.k_at(1, 15)[7] = 0x3c00;
  a.v_at(1, 15)[7] = 0x3c00;
  EXPECT_LE(static_cast<void*>(a.k_at(1, 15) + 8), static_cast<void*>(a.v));
  EXPECT_LE(static_cast<void*>(a.v_at(1, 15) + 8), static_cast<void*>(b.k));
  EXPECT_EQ(b.k_at(0, 0)[0], 0);
}

TEST(KvCache, ContextLargerThanMemoryIsAPreciseError) {
  try {
    KvCache kv(30, 3, 64, int64_t(1) << 40);
    FAIL() << "a 2^40-token cache was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_memory);
    const std::string m = e.what();
    EXPECT_NE(m.find("1099511627776 tokens"), std::string::npos) << m;
    EXPECT_NE(m.find("available"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ts
