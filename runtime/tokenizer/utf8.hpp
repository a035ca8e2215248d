// Small strict UTF-8 helpers shared by the tokenizers and the stream decoder (internal header).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ts::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Result of looking at the bytes starting at some position.
struct Scan {
  enum Kind { valid, invalid, incomplete } kind;
  size_t len;  // valid: bytes of the character; invalid: bytes of the maximal invalid subpart
               // (>= 1); incomplete: bytes present (a prefix of a possible character)
  uint32_t cp;  // valid only
};

// Strict decoding (no overlongs, no surrogates, nothing above U+10FFFF). At the end of `s` a
// truncated but so-far-valid sequence is reported as `incomplete`.
inline Scan scan(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return {Scan::valid, 1, b0};
  size_t need;
  uint32_t cp;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2; cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3; cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4; cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Scan::invalid, 1, 0};
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= avail) return {Scan::incomplete, i, 0};
    const uint8_t b = p[i];
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) return {Scan::invalid, i, 0};  // maximal subpart = bytes before b
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Scan::valid, need, cp};
}

inline bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Scan sc = scan(s, i);
    if (sc.kind != Scan::valid) return false;
    i += sc.len;
  }
  return true;
}

// Replace every maximal invalid subpart (and an incomplete tail) by U+FFFD.
inline std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Scan sc = scan(s, i);
    if (sc.kind == Scan::valid) out.append(s.substr(i, sc.len));
    else out.append(kReplacement);
    i += sc.len;
  }
  return out;
}

inline void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace ts::utf8
