// A SentencePiece ModelProto written directly in protobuf wire format (Debian ships no generated
// sentencepiece_model.pb.h). Field numbers from sentencepiece_model.proto.
#include <cstring>

#include "tokenizer/tokenizer_impl.hpp"

namespace ts::tok {
namespace {

struct Writer {
  std::string out;
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out += char(uint8_t(v) | 0x80);
      v >>= 7;
    }
    out += char(v);
  }
  void key(uint32_t field, uint32_t wire) { varint(uint64_t(field) << 3 | wire); }
  void int_field(uint32_t field, int64_t v) {  // int32/enum/bool: negative values sign-extend
    key(field, 0);
    varint(uint64_t(v));
  }
  void bytes_field(uint32_t field, std::string_view s) {
    key(field, 2);
    varint(s.size());
    out.append(s);
  }
  void float_field(uint32_t field, float f) {
    key(field, 5);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) out += char(uint8_t(u >> (8 * i)));
  }
};

}  // namespace

std::string build_spm_model_proto(const SpmProtoSpec& spec) {
  Writer model;
  const auto& pieces = *spec.pieces;
  for (size_t i = 0; i < pieces.size(); ++i) {
    Writer p;
    p.bytes_field(1, pieces[i]);
    p.float_field(2, spec.scores && i < spec.scores->size() ? (*spec.scores)[i] : 0.0f);
    int type = int((*spec.types)[i]);
    if (type < 1 || type > 6) type = 1;  // undefined -> normal
    p.int_field(3, type);
    model.bytes_field(1, p.out);
  }
  Writer trainer;
  trainer.int_field(3, 2);  // model_type = BPE
  trainer.int_field(4, int64_t(pieces.size()));
  trainer.int_field(35, spec.byte_fallback ? 1 : 0);
  trainer.int_field(40, spec.unk_id);
  trainer.int_field(41, spec.bos_id);
  trainer.int_field(42, spec.eos_id);
  trainer.int_field(43, spec.pad_id);
  model.bytes_field(2, trainer.out);
  Writer norm;
  norm.bytes_field(1, "identity");
  norm.int_field(3, spec.add_dummy_prefix ? 1 : 0);
  norm.int_field(4, 0);  // remove_extra_whitespaces = false
  norm.int_field(5, 1);  // escape_whitespaces = true
  model.bytes_field(3, norm.out);
  return std::move(model.out);
}

}  // namespace ts::tok
