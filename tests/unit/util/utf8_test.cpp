// The library's UTF-8 validator: documents and messages must be whole, valid UTF-8.
#include <gtest/gtest.h>

#include "util/utf8.hpp"

namespace ts {
namespace {

TEST(Utf8Validation, RejectsOverlongsSurrogatesAndTruncation) {
  EXPECT_FALSE(find_invalid_utf8("plain ascii").has_value());
  EXPECT_FALSE(find_invalid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80").has_value());  // euro, emoji
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);      // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("ab\xF4\x90\x80\x80"), 2u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abc\xE2\x82"), 3u);        // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);               // lone continuation byte
}

}  // namespace
}  // namespace ts
