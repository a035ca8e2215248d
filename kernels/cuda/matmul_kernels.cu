// Matrix products over GGUF weights resident on the GPU (matmul_kernels.hpp). The GEMV repeats
// the CPU backend's arithmetic per block: activations quantised exactly as
// kernels/cpu/quantize_act.cpp does, integer dot products per block (dp4a), then the block's
// scales applied with the formula of kernels/cpu/dot_generic.cpp, unfused (__fmul_rn & co.), so
// only the order in which block values are summed differs from the CPU.
//
// GEMV layout: one warp per weight row, 8 rows per 256-thread block. The activation rows are
// staged once per block in shared memory as int8 quants plus per-32 scales (chunks of the row
// when they do not fit). A weight block is split over kLanes adjacent lanes that read
// consecutive words of it; their integer partials are summed with shuffles before the scales
// are applied. Legacy offsets (Q4_0's 8, Q5_0's 16) come off once per block through the staged
// sum of the activation quants. Every weight byte is read once for all m activation rows.
// Decode (one row, gemv_row_kernel) streams the weights through shared memory with cp.async in
// a persistent grid; several activation rows (gemv_q_kernel) load each step's weight words one
// step ahead into registers.
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "launch.cuh"
#include "matmul_kernels.hpp"
#include "quantize_q8.cuh"

namespace ts::cuda {
namespace {

constexpr int kWarps = 8;  // rows per GEMV block
constexpr int kThreads = 32 * kWarps;
constexpr int kSmemBudget = 48 * 1024;  // staged activations per block (no opt-in needed)
constexpr unsigned kFull = 0xffffffffu;

// Activation formats: the partner of each weight type (the llama.cpp pairing).
enum class Act { F32, Q8_0, Q8_1, Q8_K };

// ---- small device helpers ----

__device__ __forceinline__ float h2f(uint32_t h) { return __half2float(__ushort_as_half(uint16_t(h))); }
__device__ __forceinline__ uint16_t f2h(float f) { return __half_as_ushort(__float2half_rn(f)); }
// Plain (generic) loads: the decode GEMV reads weight blocks from shared memory, everything
// else from global memory.
__device__ __forceinline__ uint32_t ld16(const uint8_t* p) { return *reinterpret_cast<const unsigned short*>(p); }
__device__ __forceinline__ uint32_t ld32(const uint8_t* p) { return *reinterpret_cast<const unsigned*>(p); }
__device__ __forceinline__ uint32_t ld8(const uint8_t* p) { return *p; }

// N little-endian words from a 2-byte-aligned address (blocks of 18, 22, 34 and 210 bytes): the
// aligned words around it, with the last two bytes read alone so that nothing past p + 4N is
// touched. Only loads here; the words are put together by operator[] when they are used.
template <int N>
struct Words2 {
  uint32_t w[N + 1];
  uint32_t sh;  // p's misalignment in bits: 0 or 16
  __device__ __forceinline__ void load(const uint8_t* p) {
    const uint32_t mis = uint32_t(reinterpret_cast<uintptr_t>(p)) & 2;
    const unsigned* base = reinterpret_cast<const unsigned*>(p - mis);  // p's own address space
    sh = mis * 8;
#pragma unroll
    for (int i = 0; i < N; ++i) w[i] = base[i];
    w[N] = sh ? ld16(p + 4 * N - 2) : 0u;
  }
  __device__ __forceinline__ uint32_t operator[](int i) const { return __funnelshift_r(w[i], w[i + 1], sh); }
};

// Bits 0..3 of x to bit 4 of bytes 0..3 (the fifth bits of Q5_0 / Q5_1 quants).
__device__ __forceinline__ uint32_t spread4(uint32_t x) {
  return ((x & 1) << 4) | ((x & 2) << 11) | ((x & 4) << 18) | ((x & 8) << 25);
}

// The CPU's block values: float(sumi) * (dw * da), plus mw * sa for Q4_1 / Q5_1.
__device__ __forceinline__ float scale_d(int sumi, float dw, float da) {
  return __fmul_rn(float(sumi), __fmul_rn(dw, da));
}
__device__ __forceinline__ float scale_dm(int sumi, uint32_t dm, float2 a) {
  return __fadd_rn(scale_d(sumi, h2f(dm & 0xffff), a.x), __fmul_rn(h2f(dm >> 16), a.y));
}

// The sum of a staged 32-value Q8_0 block's quants (kept as int bits beside its scale).
__device__ __forceinline__ int act_sum(const float2* as) { return __float_as_int(as->y); }

// Legacy lane share (two lanes per 32-weight block): lane p's quant bytes 8p..8p+7 hold weights
// 8p.. (lo) and 16 + 8p.. (hi); a is the block's 32 staged activation quants.
__device__ __forceinline__ int dot_halves(const uint32_t (&lo)[2], const uint32_t (&hi)[2], int p, const int8_t* a) {
  const int* ai = reinterpret_cast<const int*>(a);
  int s = 0;
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    s = __dp4a(int(lo[k]), ai[2 * p + k], s);
    s = __dp4a(int(hi[k]), ai[4 + 2 * p + k], s);
  }
  return s;
}

// Weight e (< 32) of a legacy block: low nibble of qs[e] for e < 16, else high nibble of qs[e - 16].
__device__ __forceinline__ int nibble(const uint8_t* qs, int e) {
  const uint32_t b = ld8(qs + (e & 15));
  return int(e < 16 ? b & 15 : b >> 4);
}

// Q4_K / Q5_K: the eight 6-bit scales (sc) and mins (mn) packed in 12 bytes s0..s2, four per word.
__device__ __forceinline__ void unpack_k(uint32_t s0, uint32_t s1, uint32_t s2, uint32_t (&sc)[2], uint32_t (&mn)[2]) {
  sc[0] = s0 & 0x3f3f3f3f;
  mn[0] = s1 & 0x3f3f3f3f;
  sc[1] = (s2 & 0x0f0f0f0f) | ((s0 >> 2) & 0x30303030);
  mn[1] = ((s2 >> 4) & 0x0f0f0f0f) | ((s1 >> 2) & 0x30303030);
}
__device__ __forceinline__ int byte_of(const uint32_t (&w)[2], int j) { return int((w[j >> 2] >> (8 * (j & 3))) & 0xff); }

// The same for one sub-block j, byte-wise (dequantisation).
__device__ __forceinline__ void k_scale(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = int(ld8(s + j) & 63);
    mn = int(ld8(s + j + 4) & 63);
  } else {
    sc = int((ld8(s + j + 4) & 15) | ((ld8(s + j - 4) >> 6) << 4));
    mn = int((ld8(s + j + 4) >> 4) | ((ld8(s + j) >> 6) << 4));
  }
}

// ---- weight formats ----
// Each type: kAct (partner format), kElems / kBytes per block, kLanes (lanes sharing a block),
// kUnroll (blocks per lane per step), kMins (K-quant min sums, a second integer sum);
// W: lane p's raw words of a block, loaded a step before use so that no arithmetic waits on them;
// dot: lane p's integer partials (x: quants, y: mins) against the block's staged activation
// quants a and per-32 scales as; finish: the block's value from the summed partials, as the CPU
// computes it; deq8: weights e0..e0+7 of a block, bit-exact with kernels/cpu/dequantize.cpp.

struct Q4_0T {  // d, qs[16]
  static constexpr Act kAct = Act::Q8_0;
  static constexpr int kElems = 32, kBytes = 18, kLanes = 2, kUnroll = 2;
  static constexpr bool kMins = false;
  struct W {
    Words2<2> q;
    uint32_t d;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    W w;
    w.q.load(b + 2 + 8 * p);
    w.d = ld16(b);
    return w;
  }
  // sum((q - 8) a) = sum(q a) - 8 sum(a): the 8 comes off once per block.
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    uint32_t lo[2], hi[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      lo[k] = w.q[k] & 0x0f0f0f0f;
      hi[k] = (w.q[k] >> 4) & 0x0f0f0f0f;
    }
    return make_int2(dot_halves(lo, hi, p, a), 0);
  }
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return scale_d(s.x - 8 * act_sum(as), h2f(w.d), as->x);
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b));
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = __fmul_rn(d, float(nibble(b + 2, e0 + i) - 8));
  }
};

struct Q4_1T {  // d, m, qs[16]
  static constexpr Act kAct = Act::Q8_1;
  static constexpr int kElems = 32, kBytes = 20, kLanes = 2, kUnroll = 2;
  static constexpr bool kMins = false;
  struct W {
    uint32_t q[2], dm;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    return W{{ld32(b + 4 + 8 * p), ld32(b + 8 + 8 * p)}, ld32(b)};
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    const uint32_t lo[2] = {w.q[0] & 0x0f0f0f0f, w.q[1] & 0x0f0f0f0f};
    const uint32_t hi[2] = {(w.q[0] >> 4) & 0x0f0f0f0f, (w.q[1] >> 4) & 0x0f0f0f0f};
    return make_int2(dot_halves(lo, hi, p, a), 0);
  }
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return scale_dm(s.x, w.dm, *as);
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = __fadd_rn(__fmul_rn(d, float(nibble(b + 4, e0 + i))), m);
  }
};

struct Q5_0T {  // d, qh (fifth bit of weight j = bit j), qs[16]
  static constexpr Act kAct = Act::Q8_0;
  static constexpr int kElems = 32, kBytes = 22, kLanes = 2, kUnroll = 2;
  static constexpr bool kMins = false;
  struct W {
    Words2<2> q;
    Words2<1> qh;
    uint32_t d;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    W w;
    w.q.load(b + 6 + 8 * p);
    w.qh.load(b + 2);
    w.d = ld16(b);
    return w;
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    const uint32_t qh = w.qh[0];
    uint32_t lo[2], hi[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      lo[k] = (w.q[k] & 0x0f0f0f0f) | spread4(qh >> (8 * p + 4 * k));
      hi[k] = ((w.q[k] >> 4) & 0x0f0f0f0f) | spread4(qh >> (16 + 8 * p + 4 * k));
    }
    return make_int2(dot_halves(lo, hi, p, a), 0);
  }
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {  // as Q4_0, with 16
    return scale_d(s.x - 16 * act_sum(as), h2f(w.d), as->x);
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b));
    const uint32_t qh = ld16(b + 2) | (ld16(b + 4) << 16);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = e0 + i;
      y[i] = __fmul_rn(d, float((nibble(b + 6, e) | int(((qh >> e) & 1) << 4)) - 16));
    }
  }
};

struct Q5_1T {  // d, m, qh, qs[16]
  static constexpr Act kAct = Act::Q8_1;
  static constexpr int kElems = 32, kBytes = 24, kLanes = 2, kUnroll = 2;
  static constexpr bool kMins = false;
  struct W {
    uint32_t q[2], qh, dm;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    return W{{ld32(b + 8 + 8 * p), ld32(b + 12 + 8 * p)}, ld32(b + 4), ld32(b)};
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    uint32_t lo[2], hi[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      lo[k] = (w.q[k] & 0x0f0f0f0f) | spread4(w.qh >> (8 * p + 4 * k));
      hi[k] = ((w.q[k] >> 4) & 0x0f0f0f0f) | spread4(w.qh >> (16 + 8 * p + 4 * k));
    }
    return make_int2(dot_halves(lo, hi, p, a), 0);
  }
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return scale_dm(s.x, w.dm, *as);
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
    const uint32_t qh = ld32(b + 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = e0 + i;
      y[i] = __fadd_rn(__fmul_rn(d, float(nibble(b + 8, e) | int(((qh >> e) & 1) << 4))), m);
    }
  }
};

struct Q8_0T {  // d, int8 qs[32]; four lanes per block, lane p holding weights 8p..8p+7
  static constexpr Act kAct = Act::Q8_0;
  static constexpr int kElems = 32, kBytes = 34, kLanes = 4, kUnroll = 2;
  static constexpr bool kMins = false;
  struct W {
    Words2<2> q;
    uint32_t d;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    W w;
    w.q.load(b + 2 + 8 * p);
    w.d = ld16(b);
    return w;
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    const int* ai = reinterpret_cast<const int*>(a);
    return make_int2(__dp4a(int(w.q[1]), ai[2 * p + 1], __dp4a(int(w.q[0]), ai[2 * p], 0)), 0);
  }
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return scale_d(s.x, h2f(w.d), as->x);
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b));
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = __fmul_rn(d, float(int8_t(ld8(b + 2 + e0 + i))));
  }
};

// K-quants: eight lanes per 256-weight super-block; lane p holds weights 4p..4p+3 of each of the
// eight 32-weight sub-blocks (consecutive words of the quants across the lanes), and the min
// term of sub-block p. Q8_K's staged scales carry (d, the sub-block's quant sum as int bits).
template <bool Five>
struct Q45_KT {  // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]; chunk c of qs: sub-blocks 2c, 2c+1
  static constexpr Act kAct = Act::Q8_K;
  static constexpr int kElems = 256, kBytes = Five ? 176 : 144, kLanes = 8, kUnroll = 1;
  static constexpr bool kMins = true;
  static constexpr int kQs = Five ? 48 : 16;
  struct W {
    uint32_t q[4], qh, s[3], dm;
  };
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    W w;
#pragma unroll
    for (int c = 0; c < 4; ++c) w.q[c] = ld32(b + kQs + 32 * c + 4 * p);
    w.qh = Five ? ld32(b + 16 + 4 * p) : 0u;
#pragma unroll
    for (int i = 0; i < 3; ++i) w.s[i] = ld32(b + 4 + 4 * i);
    w.dm = ld32(b);
    return w;
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2* as) {
    const int* ai = reinterpret_cast<const int*>(a);
    uint32_t sc[2], mn[2];
    unpack_k(w.s[0], w.s[1], w.s[2], sc, mn);
    int sumi = 0;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      uint32_t lo = w.q[c] & 0x0f0f0f0f, hi = (w.q[c] >> 4) & 0x0f0f0f0f;
      if constexpr (Five) {
        lo |= ((w.qh >> (2 * c)) & 0x01010101) << 4;
        hi |= ((w.qh >> (2 * c + 1)) & 0x01010101) << 4;
      }
      sumi += byte_of(sc, 2 * c) * __dp4a(int(lo), ai[16 * c + p], 0);
      sumi += byte_of(sc, 2 * c + 1) * __dp4a(int(hi), ai[16 * c + 8 + p], 0);
    }
    return make_int2(sumi, byte_of(mn, p) * __float_as_int(as[p].y));
  }
  // y.d * (d * sumi - dmin * summ)
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return __fmul_rn(as->x, __fsub_rn(__fmul_rn(h2f(w.dm & 0xffff), float(s.x)), __fmul_rn(h2f(w.dm >> 16), float(s.y))));
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
    const int c = e0 / 64, high = (e0 / 32) & 1, j = 2 * c + high, l0 = e0 & 31;
    int sc, mn;
    k_scale(b + 4, j, sc, mn);
    const float d1 = __fmul_rn(d, float(sc)), m1 = __fmul_rn(dmin, float(mn));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t qb = ld8(b + kQs + 32 * c + l0 + i);
      int q = int(high ? qb >> 4 : qb & 15);
      if constexpr (Five) q |= int(((ld8(b + 16 + l0 + i) >> j) & 1) << 4);
      y[i] = __fsub_rn(__fmul_rn(d1, float(q)), m1);
    }
  }
};
using Q4_KT = Q45_KT<false>;
using Q5_KT = Q45_KT<true>;

// ql[128], qh[64], int8 scales[16], d: two 128-weight halves h of four 32-weight groups g; group
// g takes ql[64h + 32(g & 1) + l] (low nibble for g < 2, else high), bits 2g.. of qh[32h + l],
// and one scale per 16 weights. The block is only 2-byte aligned, but every word a lane needs
// sits at a multiple of 4 from its start and before d: the aligned words around it are read
// whole (the second only when the block is misaligned) and shifted together in dot().
struct Q6_KT {
  static constexpr Act kAct = Act::Q8_K;
  static constexpr int kElems = 256, kBytes = 210, kLanes = 8, kUnroll = 1;
  static constexpr bool kMins = false;
  struct W {
    uint32_t ql[2][2][2], qh[2][2], sc[5], d, sh;  // sh: the block's misalignment in bits
  };
  static __device__ __forceinline__ void pair(const uint8_t* a, uint32_t sh, uint32_t (&w)[2]) {
    w[0] = ld32(a);
    w[1] = sh ? ld32(a + 4) : 0u;
  }
  static __device__ __forceinline__ uint32_t word(const uint32_t (&w)[2], uint32_t sh) {
    return __funnelshift_r(w[0], w[1], sh);
  }
  static __device__ __forceinline__ W load(const uint8_t* b, int p) {
    W w;
    w.sh = uint32_t(reinterpret_cast<uintptr_t>(b) & 2) * 8;
    const uint8_t* a = b - w.sh / 8;  // 4-byte aligned
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      pair(a + 64 * h + 4 * p, w.sh, w.ql[h][0]);
      pair(a + 64 * h + 32 + 4 * p, w.sh, w.ql[h][1]);
      pair(a + 128 + 32 * h + 4 * p, w.sh, w.qh[h]);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) w.sc[i] = ld32(a + 192 + 4 * i);
    w.sc[4] = w.sh ? ld32(a + 208) : 0u;
    w.d = ld16(b + 208);
    return w;
  }
  static __device__ __forceinline__ int2 dot(const W& w, int p, const int8_t* a, const float2*) {
    const int* ai = reinterpret_cast<const int*>(a);
    const int half16 = p >> 2;  // weights 4p.. lie in the group's first or second 16
    int sumi = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t qh = word(w.qh[h], w.sh);
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        const uint32_t ql = word(w.ql[h][g & 1], w.sh);
        const uint32_t lo = g < 2 ? ql & 0x0f0f0f0f : (ql >> 4) & 0x0f0f0f0f;
        const uint32_t q = __vsub4(lo | (((qh >> (2 * g)) & 0x03030303) << 4), 0x20202020);
        const int i = 2 * h + g / 2;  // the word of scales 8h + 2g + half16
        const uint32_t scw = __funnelshift_r(w.sc[i], w.sc[i + 1], w.sh);
        const int sc = int(int8_t(scw >> (8 * (2 * (g & 1) + half16))));
        sumi += sc * __dp4a(int(q), ai[32 * h + 8 * g + p], 0);
      }
    }
    return make_int2(sumi, 0);
  }
  // d * y.d * sumi
  static __device__ __forceinline__ float finish(const W& w, int2 s, const float2* as) {
    return __fmul_rn(__fmul_rn(h2f(w.d), as->x), float(s.x));
  }
  static __device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
    const int h = e0 / 128, g = (e0 / 32) & 3, l0 = e0 & 31;
    const float ds = __fmul_rn(h2f(ld16(b + 208)), float(int8_t(ld8(b + 192 + 8 * h + 2 * g + l0 / 16))));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t qlb = ld8(b + 64 * h + 32 * (g & 1) + l0 + i);
      const uint32_t lo = g < 2 ? qlb & 15 : qlb >> 4;
      const int q = int(lo | (((ld8(b + 128 + 32 * h + l0 + i) >> (2 * g)) & 3) << 4)) - 32;
      y[i] = __fmul_rn(ds, float(q));
    }
  }
};

// Float weights: element i of a row as f32.
struct F32T {
  static constexpr int kSize = 4;
  static __device__ __forceinline__ float get(const uint8_t* row, int64_t i) {
    return __ldg(reinterpret_cast<const float*>(row) + i);
  }
};
struct F16T {
  static constexpr int kSize = 2;
  static __device__ __forceinline__ float get(const uint8_t* row, int64_t i) { return h2f(ld16(row + 2 * i)); }
};
struct BF16T {
  static constexpr int kSize = 2;
  static __device__ __forceinline__ float get(const uint8_t* row, int64_t i) {
    return __uint_as_float(ld16(row + 2 * i) << 16);
  }
};

// 16 bytes of a float type's row as 16 / kSize floats.
template <class F>
__device__ __forceinline__ void unpack16(const uint4& u, float (&x)[16 / F::kSize]) {
  const uint32_t v[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (std::is_same_v<F, F32T>) {
      x[k] = __uint_as_float(v[k]);
    } else if constexpr (std::is_same_v<F, F16T>) {
      x[2 * k] = h2f(v[k] & 0xffff);
      x[2 * k + 1] = h2f(v[k] >> 16);
    } else {
      x[2 * k] = __uint_as_float(v[k] << 16);
      x[2 * k + 1] = __uint_as_float(v[k] & 0xffff0000u);
    }
  }
}

// ---- warp reductions ----

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
  return x;
}
__device__ __forceinline__ int warp_min_int(int x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(kFull, x, o));
  return x;
}

// ---- activation quantisation (kernels/cpu/quantize_act.cpp, bit for bit) ----

// Q8_0 / Q8_1 (S: with s = d * sum(q)): one thread per 4 values (quantize_q8.cuh), i over the
// m rows' n / 4 quads.
template <bool S>
__global__ void quantize_q8_kernel(const float* __restrict__ x, int64_t n, int64_t quads, uint8_t* __restrict__ dst,
                                   size_t row_bytes) {
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, n4 = n / 4, j = i / n4, c = i % n4;
  const bool valid = i < quads;
  float4 v{};
  if (valid) {
    const float* p = x + j * n + 4 * c;  // 4-byte aligned only
    v = float4{p[0], p[1], p[2], p[3]};
  }
  quantize_q8_quad<S>(v, c, dst + j * row_bytes, valid);
}

// Q8_K: one warp per 256-value block, lane l holding values 8l..8l+7. The scale comes from the
// first value of largest magnitude (its sign matters): iscale = -127 / maxv,
// q = clamp(rint(iscale * x), -127, 127), d = 1 / iscale (f32), bsums over 16 values; an
// all-zero block is all zero bytes.
__global__ void quantize_q8_k_kernel(const float* __restrict__ x, int64_t n, int64_t blocks, uint8_t* __restrict__ dst,
                                     size_t row_bytes) {
  pdl_wait();
  const int64_t wi = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (wi >= blocks) return;
  const int lane = threadIdx.x & 31;
  const int64_t nb = n / 256, j = wi / nb, b = wi % nb;
  const float* xs = x + j * n + 256 * b + 8 * lane;
  float v[8];
  float amax = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    v[i] = xs[i];
    amax = fmaxf(amax, fabsf(v[i]));
  }
  amax = warp_max(amax);
  int first = 256, q[8] = {};
  float mine = 0;  // this lane's candidate for the extreme value
#pragma unroll
  for (int i = 7; i >= 0; --i)
    if (fabsf(v[i]) == amax) first = 8 * lane + i, mine = v[i];
  first = warp_min_int(first);
  float d = 0;
  if (amax != 0) {
    const float maxv = __shfl_sync(kFull, mine, first / 8);
    const float iscale = __fdiv_rn(-127.0f, maxv);
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = max(-127, min(127, __float2int_rn(__fmul_rn(iscale, v[i]))));
    d = __fdiv_rn(1.0f, iscale);
  }
  uint8_t* blk = dst + j * row_bytes + 292 * b;
  uint32_t packed[2] = {0, 0};
  int sum = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    packed[i / 4] |= (uint32_t(q[i]) & 0xff) << (8 * (i % 4));
    sum += q[i];
  }
  reinterpret_cast<uint32_t*>(blk + 4 + 8 * lane)[0] = packed[0];
  reinterpret_cast<uint32_t*>(blk + 4 + 8 * lane)[1] = packed[1];
  sum += __shfl_xor_sync(kFull, sum, 1);  // lanes 2g, 2g+1 hold values 16g..16g+15
  if ((lane & 1) == 0) reinterpret_cast<int16_t*>(blk + 260)[lane / 2] = int16_t(sum);
  if (lane == 0) reinterpret_cast<float*>(blk)[0] = d;
}

// ---- GEMV ----

struct GemvArgs {
  const uint8_t* w;
  size_t row_bytes;
  int64_t nb;  // blocks per row
  int64_t n_out;
  const uint8_t* act;
  size_t act_bytes;  // bytes per activation row
  int chunk;         // blocks per staged chunk of the activations
  float* y;
  int64_t ldy;
};

// Stages 32-value sub-blocks [s0, s0 + ns) of the M activation rows: quants to sq (rows kc32 * 32
// bytes apart), (d, s) for Q8_1, else (d, the bits of the sub-block's quant sum) to ss (rows kc32
// apart).
template <Act A, int M>
__device__ void stage_act(const uint8_t* act, size_t act_bytes, int64_t s0, int ns, int kc32, int8_t* sq, float2* ss) {
  for (int i = threadIdx.x; i < M * ns; i += blockDim.x) {
    const int j = i / ns, s = i % ns;
    const uint8_t* row = act + j * act_bytes;
    const int64_t gs = s0 + s;
    uint32_t q[8];
    float2 sc;
    if constexpr (A == Act::Q8_0) {
      const uint8_t* blk = row + 34 * gs;
      Words2<8> w;
      w.load(blk + 2);
#pragma unroll
      for (int k = 0; k < 8; ++k) q[k] = w[k];
      int sum = 0;
#pragma unroll
      for (int k = 0; k < 8; ++k) sum = __dp4a(int(q[k]), 0x01010101, sum);
      sc = make_float2(h2f(ld16(blk)), __int_as_float(sum));
    } else if constexpr (A == Act::Q8_1) {
      const uint8_t* blk = row + 36 * gs;
#pragma unroll
      for (int k = 0; k < 8; ++k) q[k] = ld32(blk + 4 + 4 * k);
      const uint32_t ds = ld32(blk);
      sc = make_float2(h2f(ds & 0xffff), h2f(ds >> 16));
    } else {
      const uint8_t* blk = row + 292 * (gs / 8);
      const int sub = int(gs % 8);
#pragma unroll
      for (int k = 0; k < 8; ++k) q[k] = ld32(blk + 4 + 32 * sub + 4 * k);
      const uint32_t bs = ld32(blk + 260 + 4 * sub);
      sc = make_float2(__uint_as_float(ld32(blk)), __int_as_float(int(int16_t(bs & 0xffff)) + int(int16_t(bs >> 16))));
    }
    uint4* dq = reinterpret_cast<uint4*>(sq + j * kc32 * 32 + 32 * s);
    dq[0] = make_uint4(q[0], q[1], q[2], q[3]);
    dq[1] = make_uint4(q[4], q[5], q[6], q[7]);
    ss[j * kc32 + s] = sc;
  }
}

template <class T, int U>
__device__ __forceinline__ void load_step(const uint8_t* row, int64_t base, int64_t end, int gi, int p,
                                          typename T::W (&w)[U]) {
  constexpr int kBpw = 32 / T::kLanes;  // blocks a warp covers per unrolled slot
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t b = base + u * kBpw + gi;
    if (b < end) w[u] = T::load(row + b * T::kBytes, p);
  }
}

// One activation row (rows gemv_row_kernel cannot take: not 16-byte aligned, or activations too
// long): at most 64 registers, four blocks per SM; more rows: 128 (two blocks; left free,
// ptxas spilled).
template <class T, int M>
__global__ void __launch_bounds__(kThreads, M == 1 ? 4 : 2) gemv_q_kernel(GemvArgs g) {
  pdl_wait();
  constexpr int G = T::kLanes, U = T::kUnroll, kBpw = 32 / G, kStep = U * kBpw, kSub = T::kElems / 32;
  extern __shared__ __align__(16) unsigned char smem[];
  const int kc32 = g.chunk * kSub;
  int8_t* sq = reinterpret_cast<int8_t*>(smem);
  float2* ss = reinterpret_cast<float2*>(smem + M * kc32 * 32);

  const int lane = threadIdx.x & 31, gi = lane / G, p = lane % G;
  const int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  g.act += size_t(blockIdx.y) * M * g.act_bytes;  // grid.y: groups of M activation rows
  g.y += int64_t(blockIdx.y) * M * g.ldy;
  const bool active = r < g.n_out;  // whole warps; idle ones still help staging
  const uint8_t* row = g.w + (active ? r : 0) * g.row_bytes;

  float acc[M] = {};
  typename T::W cur[U] = {}, nxt[U] = {};
  for (int64_t c0 = 0; c0 < g.nb; c0 += g.chunk) {
    const int64_t c1 = min(g.nb, c0 + g.chunk);
    if (active) load_step<T, U>(row, c0, c1, gi, p, nxt);  // in flight during the staging
    __syncthreads();  // the previous chunk's activations are consumed
    stage_act<T::kAct, M>(g.act, g.act_bytes, c0 * kSub, int(c1 - c0) * kSub, kc32, sq, ss);
    __syncthreads();
    if (!active) continue;
    for (int64_t base = c0; base < c1; base += kStep) {
#pragma unroll
      for (int u = 0; u < U; ++u) cur[u] = nxt[u];
      if (base + kStep < c1) load_step<T, U>(row, base + kStep, c1, gi, p, nxt);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t b = base + u * kBpw + gi;
        const bool valid = b < c1;
        const int off = int(b - c0);
#pragma unroll
        for (int j = 0; j < M; ++j) {
          const float2* as = ss + j * kc32 + off * kSub;
          int2 s = valid ? T::dot(cur[u], p, sq + (j * kc32 + off * kSub) * 32, as) : make_int2(0, 0);
#pragma unroll
          for (int o = 1; o < G; o <<= 1) {  // the block's lanes are adjacent
            s.x += __shfl_xor_sync(kFull, s.x, o);
            if constexpr (T::kMins) s.y += __shfl_xor_sync(kFull, s.y, o);
          }
          if (valid && p == 0) acc[j] += T::finish(cur[u], s, as);
        }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int j = 0; j < M; ++j) {
    const float v = warp_sum(acc[j]);
    if (lane == 0) g.y[j * g.ldy + r] = v;
  }
}

// Decode: one activation row against the rows of up to kGemvMaxTargets weights of one type
// (Q/K/V, gate/up), as one list of rows. The grid is what fits on the device at once, so each
// block stages the activation a single time; each warp walks its rows (every gridDim.x * kWarps-th)
// as one stream of chunks of kChunkBlocks weight blocks. The weights are copied to shared
// memory with 16-byte cp.async (whole 128-byte lines per request, whatever the block size) into
// a ring of Stages chunks per warp, so Stages - 1 chunks are in flight while one computes; the
// lanes then read their blocks from shared memory as the other kernels read global memory.
struct RowArgs {
  GemvTarget t[kGemvMaxTargets];
  int64_t rows;  // of all targets
  size_t row_bytes;
  int64_t nb;  // blocks per row
  const uint8_t* act;
};

// Row r of the list: its weight row and output. Constant indices only, so that the arguments
// stay in the parameter bank (a variable index would copy them to every thread's stack).
__device__ __forceinline__ void locate(const RowArgs& g, int64_t r, const uint8_t*& w, float*& y) {
  const int64_t e0 = g.t[0].n_out, e1 = e0 + g.t[1].n_out;
  const GemvTarget& t = r < e0 ? g.t[0] : r < e1 ? g.t[1] : g.t[2];
  const int64_t i = r < e0 ? r : r < e1 ? r - e0 : r - e1;
  w = static_cast<const uint8_t*>(t.w) + i * g.row_bytes;
  y = t.y + i;
}

// Weight blocks per streamed chunk: a multiple of 16 bytes, about 1-2 KiB.
template <class T>
constexpr int kChunkBlocks = T::kElems == 256 ? 8 : T::kBytes == 34 ? 32 : 64;

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(unsigned(__cvta_generic_to_shared(dst))), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// A warp's place in its stream: chunk c of row r (weight row w, output y).
struct ChunkPos {
  int r, c;
  const uint8_t* w;
  float* y;
};

// One chunk's blocks [b0, b0 + CB) against the staged activation, into acc. Full: every block
// exists (no checks).
template <class T, int CB, bool Full>
__device__ __forceinline__ void dot_chunk(const uint8_t* chunk, int b0, int nb, const int8_t* sq, const float2* ss,
                                          int gi, int p, float& acc) {
  constexpr int G = T::kLanes, kBpw = 32 / G, kSub = T::kElems / 32;
#pragma unroll
  for (int k = 0; k < CB / kBpw; ++k) {
    const int bl = k * kBpw + gi, b = b0 + bl;
    const bool valid = Full || b < nb;
    const float2* as = ss + (valid ? b : 0) * kSub;  // past the row: block 0 stands in, unused
    const typename T::W w = T::load(chunk + (valid ? bl : 0) * T::kBytes, p);
    int2 s = T::dot(w, p, sq + (valid ? b : 0) * kSub * 32, as);
#pragma unroll
    for (int o = 1; o < G; o <<= 1) {
      s.x += __shfl_xor_sync(kFull, s.x, o);
      if constexpr (T::kMins) s.y += __shfl_xor_sync(kFull, s.y, o);
    }
    if (valid && p == 0) acc += T::finish(w, s, as);
  }
}

template <class T, int Stages>
__global__ void __launch_bounds__(kThreads) gemv_row_kernel(RowArgs g) {
  constexpr int kSub = T::kElems / 32, CB = kChunkBlocks<T>, kChunkBytes = CB * T::kBytes;
  constexpr int kPieces = (kChunkBytes + 511) / 512;  // 16-byte copies per lane and chunk
  extern __shared__ __align__(16) unsigned char smem[];
  const int nb = int(g.nb), n32 = nb * kSub, chunks = (nb + CB - 1) / CB;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, gi = lane / T::kLanes, p = lane % T::kLanes;
  uint8_t* ring = smem + warp * Stages * kChunkBytes;
  int8_t* sq = reinterpret_cast<int8_t*>(smem + kWarps * Stages * kChunkBytes);
  float2* ss = reinterpret_cast<float2*>(sq + n32 * 32);
  const int rows = int(g.rows), stride = int(gridDim.x) * kWarps;

  auto advance = [&](ChunkPos q) {
    if (++q.c == chunks) {
      q.c = 0;
      q.r += stride;
      if (q.r < rows) locate(g, q.r, q.w, q.y);
    }
    return q;
  };
  // Copies chunk q into ring slot `slot`; one commit group per chunk, empty past the end.
  auto issue = [&](const ChunkPos& q, int slot) {
    if (q.r < rows) {
      const int bytes = min(CB, nb - q.c * CB) * T::kBytes;  // the row ends 16-aligned
      const uint8_t* src = q.w + q.c * kChunkBytes;
      uint8_t* dst = ring + slot * kChunkBytes;
#pragma unroll
      for (int k = 0; k < kPieces; ++k) {
        const int o = 16 * lane + 512 * k;
        if (o < bytes) cp_async16(dst + o, src + o);
      }
    }
    cp_async_commit();
  };

  ChunkPos cur{int(blockIdx.x) * kWarps + warp, 0, nullptr, nullptr};
  if (cur.r < rows) locate(g, cur.r, cur.w, cur.y);
  ChunkPos ahead = cur;
#pragma unroll
  for (int i = 0; i < Stages - 1; ++i) {  // in flight during the staging
    issue(ahead, i);
    ahead = advance(ahead);
  }
  pdl_wait();  // the weights are constant; the activation is the previous kernel's
  stage_act<T::kAct, 1>(g.act, 0, 0, n32, n32, sq, ss);
  __syncthreads();
  float acc = 0.f;
  for (int slot = 0; cur.r < rows; slot = slot + 1 == Stages ? 0 : slot + 1) {
    issue(ahead, slot == 0 ? Stages - 1 : slot - 1);  // into the slot computed last
    ahead = advance(ahead);
    cp_async_wait<Stages - 1>();  // this lane's copies of the chunk have landed
    __syncwarp();                 // and every lane's
    const uint8_t* chunk = ring + slot * kChunkBytes;
    if ((cur.c + 1) * CB <= nb)
      dot_chunk<T, CB, true>(chunk, cur.c * CB, nb, sq, ss, gi, p, acc);
    else
      dot_chunk<T, CB, false>(chunk, cur.c * CB, nb, sq, ss, gi, p, acc);
    __syncwarp();  // the slot is read before the next issue overwrites it
    if (cur.c + 1 == chunks) {
      const float v = warp_sum(acc);
      if (lane == 0) *cur.y = v;
      acc = 0.f;
    }
    cur = advance(cur);
  }
  cp_async_wait<0>();
}

// Float weights against f32 activations (read through L1): one warp per row, lanes striding
// over it V values at a time (16-byte loads when the rows allow).
template <class F, bool kVec>
__global__ void __launch_bounds__(kThreads) gemv_f_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n,
                                                          int64_t n_out, const float* __restrict__ act, int m,
                                                          float* __restrict__ y, int64_t ldy) {
  pdl_wait();
  constexpr int V = kVec ? 16 / F::kSize : 1;
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (r >= n_out) return;
  act += int64_t(blockIdx.y) * m * n;  // grid.y: groups of m activation rows
  y += int64_t(blockIdx.y) * m * ldy;
  const uint8_t* row = w + r * row_bytes;
  float acc[kGemvMaxRows] = {};
#pragma unroll 2
  for (int64_t i = int64_t(lane) * V; i < n; i += 32 * V) {
    float wv[V];
    if constexpr (kVec) {
      unpack16<F>(__ldg(reinterpret_cast<const uint4*>(row + i * F::kSize)), wv);
    } else {
      wv[0] = F::get(row, i);
    }
#pragma unroll
    for (int j = 0; j < kGemvMaxRows; ++j) {
      if (j >= m) break;
      const float* x = act + j * n + i;
#pragma unroll
      for (int k = 0; k < V; k += 4) {
        if constexpr (kVec) {
          const float4 xv = __ldg(reinterpret_cast<const float4*>(x + k));
          acc[j] += wv[k] * xv.x + wv[k + 1] * xv.y + wv[k + 2] * xv.z + wv[k + 3] * xv.w;
        } else {
          acc[j] += wv[0] * __ldg(x);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kGemvMaxRows; ++j) {
    if (j >= m) break;
    const float v = warp_sum(acc[j]);
    if (lane == 0) y[j * ldy + r] = v;
  }
}

// ---- dequantisation ----

__device__ __forceinline__ void store8(float* y, const float (&v)[8]) {
  reinterpret_cast<float4*>(y)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(y)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(uint16_t* y, const float (&v)[8]) {
  uint4 u;
  uint32_t* h = &u.x;
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = f2h(v[2 * k]) | (uint32_t(f2h(v[2 * k + 1])) << 16);
  *reinterpret_cast<uint4*>(y) = u;
}
__device__ __forceinline__ void store1(float* y, float v) { *y = v; }
__device__ __forceinline__ void store1(uint16_t* y, float v) { *y = f2h(v); }

// Output row i is weight row ids[i] (ids non-null) or r0 + i; eight values per thread.
template <class T, class Out>
__global__ void dequantize_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n,
                                  const int32_t* __restrict__ ids, int64_t r0, int64_t rows, Out* __restrict__ y) {
  pdl_wait();
  const int64_t groups = n / 8, total = rows * groups;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / groups, e = 8 * (t % groups);
    const int64_t r = ids ? int64_t(ids[i]) : r0 + i;
    float v[8];
    T::deq8(w + r * row_bytes + e / T::kElems * T::kBytes, int(e % T::kElems), v);
    store8(y + i * n + e, v);
  }
}

// Float weights, one value per thread.
template <class F, class Out>
__global__ void dequantize_float_kernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t n,
                                        const int32_t* __restrict__ ids, int64_t r0, int64_t rows,
                                        Out* __restrict__ y) {
  pdl_wait();
  const int64_t total = rows * n;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / n, e = t % n;
    const int64_t r = ids ? int64_t(ids[i]) : r0 + i;
    store1(y + t, F::get(w + r * row_bytes, e));
  }
}

__global__ void f32_to_f16_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
  pdl_wait();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = f2h(x[i]);
}

// ---- host side ----

Act partner(GgmlType wt) {
  switch (wt) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return Act::F32;
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return Act::Q8_0;
    case GgmlType::Q4_1: case GgmlType::Q5_1: return Act::Q8_1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return Act::Q8_K;
    default: throw std::invalid_argument("cuda matmul: unsupported weight type");
  }
}

// Calls f(T{}) with the weight format's traits.
template <class Fn>
void with_quant(GgmlType wt, Fn&& f) {
  switch (wt) {
    case GgmlType::Q4_0: return f(Q4_0T{});
    case GgmlType::Q4_1: return f(Q4_1T{});
    case GgmlType::Q5_0: return f(Q5_0T{});
    case GgmlType::Q5_1: return f(Q5_1T{});
    case GgmlType::Q8_0: return f(Q8_0T{});
    case GgmlType::Q4_K: return f(Q4_KT{});
    case GgmlType::Q5_K: return f(Q5_KT{});
    case GgmlType::Q6_K: return f(Q6_KT{});
    default: throw std::invalid_argument("cuda matmul: unsupported weight type");
  }
}
template <class Fn>
void with_float(GgmlType wt, Fn&& f) {
  switch (wt) {
    case GgmlType::F32: return f(F32T{});
    case GgmlType::F16: return f(F16T{});
    case GgmlType::BF16: return f(BF16T{});
    default: throw std::invalid_argument("cuda matmul: unsupported weight type");
  }
}
bool is_float(GgmlType wt) { return partner(wt) == Act::F32; }

// Calls f(std::integral_constant<int, M>{}) for m in [1, kGemvMaxRows].
template <class Fn>
void with_rows(int64_t m, Fn&& f) {
  static_assert(kGemvMaxRows == 8);
  if (!dispatch_1_to_8(int(m), f)) throw std::invalid_argument("launch_gemv: m must be in [1, kGemvMaxRows]");
}

int64_t block_elems(GgmlType wt) {
  int64_t e = 1;
  if (!is_float(wt)) with_quant(wt, [&](auto t) { e = decltype(t)::kElems; });
  return e;
}

void check_shape(GgmlType wt, int64_t n, const char* what) {
  if (n <= 0 || n % block_elems(wt) != 0)
    throw std::invalid_argument(std::string(what) + ": n_in not a positive multiple of the block size");
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// Grid of a grid-stride loop over `total` items.
unsigned grid_for(int64_t total, int threads) {
  return unsigned(std::min<int64_t>((total + threads - 1) / threads, 1 << 16));
}

template <class Out>
void dequantize(GgmlType wt, const void* w, size_t row_bytes, int64_t n, const int32_t* ids, int64_t r0,
                int64_t rows, Out* y, cudaStream_t s, const char* what) {
  check_shape(wt, n, what);
  if (rows <= 0) return;
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  if (is_float(wt)) {
    with_float(wt, [&](auto f) {
      launch(dequantize_float_kernel<decltype(f), Out>, grid_for(rows * n, 256), 256, 0, s, wb, row_bytes, n, ids, r0,
             rows, y);
    });
  } else {
    if (!aligned(y, 16)) throw std::invalid_argument(std::string(what) + ": output not 16-byte aligned");
    with_quant(wt, [&](auto t) {
      launch(dequantize_kernel<decltype(t), Out>, grid_for(rows * n / 8, 256), 256, 0, s, wb, row_bytes, n, ids, r0,
             rows, y);
    });
  }
  check(cudaGetLastError(), what);
}

// Staged bytes of a quantised activation row of n values: 1 per value (quants) + 8 per 32 (scales).
size_t staged_bytes(int64_t n) { return size_t(n) * 5 / 4; }

// Chunks per warp in the decode GEMV's ring. Measured on an H200 (tests/bench/NOTES.md): two
// stages of ~1 KiB beat three or four, and 2 KiB chunks: the kernel is bound by its instructions
// more than by bytes in flight, so more resident warps pay more than deeper rings.
constexpr int kRowStages = 2;

template <class T>
size_t row_kernel_smem(int64_t n_in) {
  return size_t(kWarps * kRowStages * kChunkBlocks<T> * T::kBytes) + staged_bytes(n_in);
}

// The decode kernel takes 16-byte-aligned rows (cp.async's unit) whose activation fits in
// shared memory beside the ring.
bool row_kernel_fits(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in) {
  if (is_float(wt) || !aligned(w, 16) || row_bytes % 16 != 0 || n_in >= (int64_t(1) << 24)) return false;
  size_t smem = 0;
  with_quant(wt, [&](auto t) { smem = row_kernel_smem<decltype(t)>(n_in); });
  return smem <= 160 * 1024;
}

template <class T>
void launch_row_kernel(const RowArgs& g, cudaStream_t s) {
  const auto kernel = gemv_row_kernel<T, kRowStages>;
  const size_t smem = row_kernel_smem<T>(g.nb * T::kElems);
  int dev = 0, sms = 0, per_sm = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "cudaFuncSetAttribute");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem), "cudaOccupancy");
  const int64_t grid = std::min<int64_t>((g.rows + kWarps - 1) / kWarps, int64_t(sms) * std::max(per_sm, 1));
  launch(kernel, unsigned(grid), kThreads, smem, s, g);
}

// groups x m activation rows (m <= kGemvMaxRows), group g on grid.y = g.
void launch_gemv_groups(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const void* act,
                        int64_t m, int64_t groups, float* y, int64_t ldy, cudaStream_t s) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const dim3 grid(unsigned((n_out + kWarps - 1) / kWarps), unsigned(groups));
  if (is_float(wt)) {
    with_float(wt, [&](auto f) {
      using F = decltype(f);
      const float* x = static_cast<const float*>(act);
      if (aligned(w, 16) && row_bytes % 16 == 0 && aligned(act, 16) && n_in % (16 / F::kSize) == 0)
        launch(gemv_f_kernel<F, true>, grid, kThreads, 0, s, wb, row_bytes, n_in, n_out, x, int(m), y, ldy);
      else
        launch(gemv_f_kernel<F, false>, grid, kThreads, 0, s, wb, row_bytes, n_in, n_out, x, int(m), y, ldy);
    });
    check(cudaGetLastError(), "gemv_f_kernel");
    return;
  }
  with_quant(wt, [&](auto t) {
    using T = decltype(t);
    const int64_t fit = int64_t(kSmemBudget) / int64_t(staged_bytes(m * T::kElems));  // blocks per chunk
    const int64_t nb = n_in / T::kElems, chunk = std::min(nb, fit);
    const size_t smem = staged_bytes(m * chunk * T::kElems);
    const GemvArgs g{wb, row_bytes, nb, n_out, static_cast<const uint8_t*>(act), act_row_bytes(wt, n_in),
                     int(chunk), y, ldy};
    with_rows(m, [&](auto mc) { launch(gemv_q_kernel<T, decltype(mc)::value>, grid, kThreads, smem, s, g); });
  });
  check(cudaGetLastError(), "gemv_q_kernel");
}

}  // namespace

size_t act_row_bytes(GgmlType wt, int64_t n) {
  switch (partner(wt)) {
    case Act::F32: return size_t(n) * 4;
    case Act::Q8_0: return size_t(n / 32) * 34;
    case Act::Q8_1: return size_t(n / 32) * 36;
    case Act::Q8_K: return size_t(n / 256) * 292;
  }
  return 0;
}

void launch_quantize_act(GgmlType wt, const float* x, int64_t m, int64_t n, void* dst, cudaStream_t s) {
  check_shape(wt, n, "launch_quantize_act");
  if (m <= 0) return;
  const Act a = partner(wt);
  if (a == Act::F32) {
    check(cudaMemcpyAsync(dst, x, size_t(m * n) * 4, cudaMemcpyDeviceToDevice, s), "launch_quantize_act");
    return;
  }
  const size_t rb = act_row_bytes(wt, n);
  uint8_t* d = static_cast<uint8_t*>(dst);
  if (a == Act::Q8_K) {
    const int64_t blocks = m * (n / 256);  // one warp each
    launch(quantize_q8_k_kernel, unsigned((blocks + kWarps - 1) / kWarps), kThreads, 0, s, x, n, blocks, d, rb);
  } else {
    const int64_t quads = m * n / 4;  // one thread each
    const unsigned grid = unsigned((quads + kThreads - 1) / kThreads);
    if (a == Act::Q8_0) launch(quantize_q8_kernel<false>, grid, kThreads, 0, s, x, n, quads, d, rb);
    if (a == Act::Q8_1) launch(quantize_q8_kernel<true>, grid, kThreads, 0, s, x, n, quads, d, rb);
  }
  check(cudaGetLastError(), "quantize_act kernel");
}

namespace {

// One row (act, quantised) against the targets, through the decode kernel.
void gemv_row(GgmlType wt, size_t row_bytes, int64_t n_in, const GemvTarget* targets, int n, const void* act,
              cudaStream_t s) {
  RowArgs g{};
  for (int i = 0; i < n; ++i) {
    g.t[i] = targets[i];
    g.t[i].n_out = std::max<int64_t>(targets[i].n_out, 0);
    g.rows += g.t[i].n_out;
  }
  if (g.rows <= 0) return;
  if (g.rows >= (int64_t(1) << 31)) throw std::invalid_argument("launch_gemv_row: too many rows");
  g.row_bytes = row_bytes;
  g.act = static_cast<const uint8_t*>(act);
  with_quant(wt, [&](auto t) {
    using T = decltype(t);
    g.nb = n_in / T::kElems;
    launch_row_kernel<T>(g, s);
  });
  check(cudaGetLastError(), "gemv_row_kernel");
}

}  // namespace

void launch_gemv_row(GgmlType wt, size_t row_bytes, int64_t n_in, const GemvTarget* targets, int n, const void* act,
                     cudaStream_t s) {
  check_shape(wt, n_in, "launch_gemv_row");
  if (n < 1 || n > kGemvMaxTargets) throw std::invalid_argument("launch_gemv_row: 1 to kGemvMaxTargets weights");
  if (!aligned(act, 4)) throw std::invalid_argument("launch_gemv_row: activations must be 4-byte aligned");
  bool fits = true;
  for (int i = 0; i < n; ++i) {
    if (!aligned(targets[i].w, 4)) throw std::invalid_argument("launch_gemv_row: weights must be 4-byte aligned");
    fits = fits && row_kernel_fits(wt, targets[i].w, row_bytes, n_in);
  }
  if (fits) {
    gemv_row(wt, row_bytes, n_in, targets, n, act, s);
    return;
  }
  for (int i = 0; i < n; ++i)  // one launch per weight
    launch_gemv(wt, targets[i].w, row_bytes, n_in, targets[i].n_out, act, 1, targets[i].y, targets[i].n_out, s);
}

void launch_gemv(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const void* act,
                 int64_t m, float* y, int64_t ldy, cudaStream_t s) {
  check_shape(wt, n_in, "launch_gemv");
  if (m < 1) throw std::invalid_argument("launch_gemv: m must be >= 1");
  if (!aligned(w, 4) || !aligned(act, 4))
    throw std::invalid_argument("launch_gemv: weights and activations must be 4-byte aligned");
  if (n_out <= 0) return;
  if (m == 1 && row_kernel_fits(wt, w, row_bytes, n_in)) {
    const GemvTarget t{w, n_out, y};
    gemv_row(wt, row_bytes, n_in, &t, 1, act, s);
    return;
  }
  if (m > kGemvMaxRows) {  // full groups of rows side by side on grid.y, then the rest
    const int64_t full = m / kGemvMaxRows * kGemvMaxRows;
    launch_gemv_groups(wt, w, row_bytes, n_in, n_out, act, kGemvMaxRows, full / kGemvMaxRows, y, ldy, s);
    if (full < m)
      launch_gemv_groups(wt, w, row_bytes, n_in, n_out,
                         static_cast<const uint8_t*>(act) + size_t(full) * act_row_bytes(wt, n_in), m - full, 1,
                         y + full * ldy, ldy, s);
    return;
  }
  launch_gemv_groups(wt, w, row_bytes, n_in, n_out, act, m, 1, y, ldy, s);
}

void launch_dequantize_f16(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t r0, int64_t r1,
                           uint16_t* dst, cudaStream_t s) {
  dequantize(wt, w, row_bytes, n_in, nullptr, r0, r1 - r0, dst, s, "launch_dequantize_f16");
}

void launch_get_rows(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, const int32_t* ids, int64_t m,
                     float* y, cudaStream_t s) {
  dequantize(wt, w, row_bytes, n_in, ids, 0, m, y, s, "launch_get_rows");
}

void launch_f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  launch(f32_to_f16_kernel, grid_for(n, 256), 256, 0, s, x, y, n);
  check(cudaGetLastError(), "f32_to_f16_kernel");
}

}  // namespace ts::cuda
