// AVX-512 VNNI GEMM over packed weights. Each vpdpbusd multiplies 4 activation bytes (broadcast
// to all 16 lanes) by 16 columns x 4 K of weights and adds into 16 column accumulators exactly:
// the accumulators are output columns, so nothing is reduced horizontally. The micro-kernel keeps
// MR rows x NR column blocks of accumulators (24 of the 32 zmm registers): per group of 4 K it
// loads NR weight vectors and MR broadcasts for MR * NR instructions (64 MACs each).
#include <immintrin.h>

#include <algorithm>

#include "cpu/int8_gemm_packed.h"

namespace compress_ops {
namespace {

constexpr int kMr = 8, kNr = 3;

#define COMPRESS_DPBUSD(acc, a, b) asm("vpdpbusd %[bv], %[av], %[c]" : [c] "+v"(acc) : [av] "v"(a), [bv] "v"(b))

template <int MR, int NR>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void micro_kernel(const uint8_t* a, int64_t lda,
                                                                         const int8_t* w, int64_t groups,
                                                                         const int32_t* w_sums, int32_t* c,
                                                                         int64_t ldc) {
  __m512i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  const int64_t block = groups * kPackGroupBytes;  // bytes between consecutive column blocks
  for (int64_t g = 0; g < groups; ++g) {
    __m512i wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_si512(w + j * block + g * kPackGroupBytes);
    for (int i = 0; i < MR; ++i) {
      int32_t four;
      __builtin_memcpy(&four, a + i * lda + g * kPackK, sizeof(four));
      const __m512i av = _mm512_set1_epi32(four);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, wv[j]);
    }
  }
  for (int j = 0; j < NR; ++j) {
    const __m512i offset = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + j * kPackCols), 7);  // 128 * sum
    for (int i = 0; i < MR; ++i) _mm512_storeu_si512(c + i * ldc + j * kPackCols, _mm512_sub_epi32(acc[i][j], offset));
  }
}

// The full 8 x 3 block with 24 named accumulators: GCC 12 keeps an array of them in registers
// only for small blocks and otherwise spills and reloads every accumulator each group.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void micro_kernel_8x3(const uint8_t* a, int64_t lda,
                                                                             const int8_t* w, int64_t groups,
                                                                             const int32_t* w_sums, int32_t* c,
                                                                             int64_t ldc) {
#define COMPRESS_ROW_ACC(i) __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = c##i##0, c##i##2 = c##i##0;
  COMPRESS_ROW_ACC(0) COMPRESS_ROW_ACC(1) COMPRESS_ROW_ACC(2) COMPRESS_ROW_ACC(3)
  COMPRESS_ROW_ACC(4) COMPRESS_ROW_ACC(5) COMPRESS_ROW_ACC(6) COMPRESS_ROW_ACC(7)
#undef COMPRESS_ROW_ACC
  const int64_t block = groups * kPackGroupBytes;
  const int8_t *w0 = w, *w1 = w + block, *w2 = w + 2 * block;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b0 = _mm512_loadu_si512(w0 + g * kPackGroupBytes);
    const __m512i b1 = _mm512_loadu_si512(w1 + g * kPackGroupBytes);
    const __m512i b2 = _mm512_loadu_si512(w2 + g * kPackGroupBytes);
#define COMPRESS_ROW_DOT(i)                                                    \
  {                                                                            \
    int32_t four;                                                              \
    __builtin_memcpy(&four, a + (i) * lda + g * kPackK, sizeof(four));         \
    const __m512i av = _mm512_set1_epi32(four);                                \
    COMPRESS_DPBUSD(c##i##0, av, b0);                            \
    COMPRESS_DPBUSD(c##i##1, av, b1);                            \
    COMPRESS_DPBUSD(c##i##2, av, b2);                            \
  }
    COMPRESS_ROW_DOT(0) COMPRESS_ROW_DOT(1) COMPRESS_ROW_DOT(2) COMPRESS_ROW_DOT(3)
    COMPRESS_ROW_DOT(4) COMPRESS_ROW_DOT(5) COMPRESS_ROW_DOT(6) COMPRESS_ROW_DOT(7)
#undef COMPRESS_ROW_DOT
  }
  const __m512i o0 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums), 7);
  const __m512i o1 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + kPackCols), 7);
  const __m512i o2 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + 2 * kPackCols), 7);
#define COMPRESS_ROW_STORE(i)                                                          \
  _mm512_storeu_si512(c + (i) * ldc, _mm512_sub_epi32(c##i##0, o0));                   \
  _mm512_storeu_si512(c + (i) * ldc + kPackCols, _mm512_sub_epi32(c##i##1, o1));       \
  _mm512_storeu_si512(c + (i) * ldc + 2 * kPackCols, _mm512_sub_epi32(c##i##2, o2));
  COMPRESS_ROW_STORE(0) COMPRESS_ROW_STORE(1) COMPRESS_ROW_STORE(2) COMPRESS_ROW_STORE(3)
  COMPRESS_ROW_STORE(4) COMPRESS_ROW_STORE(5) COMPRESS_ROW_STORE(6) COMPRESS_ROW_STORE(7)
#undef COMPRESS_ROW_STORE
}

using MicroKernel = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, const int32_t*, int32_t*, int64_t);

template <int MR>
constexpr MicroKernel kernels_for_rows[kNr] = {&micro_kernel<MR, 1>, &micro_kernel<MR, 2>, &micro_kernel<MR, 3>};

constexpr const MicroKernel* kKernels[kMr] = {kernels_for_rows<1>, kernels_for_rows<2>, kernels_for_rows<3>,
                                              kernels_for_rows<4>, kernels_for_rows<5>, kernels_for_rows<6>,
                                              kernels_for_rows<7>, kernels_for_rows<8>};

}  // namespace

void packed_tile_avx512vnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t groups,
                            int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  const int64_t b0 = n0 / kPackCols, b1 = (n1 + kPackCols - 1) / kPackCols;
  // Rows outer: an MR-row strip of A stays in L1 while the tile's weight panels stream from L2.
  for (int64_t m = m0; m < m1; m += kMr) {
    const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
    for (int64_t b = b0; b < b1; b += kNr) {
      const int nr = static_cast<int>(std::min<int64_t>(kNr, b1 - b));
      const MicroKernel kernel = mr == kMr && nr == kNr ? &micro_kernel_8x3 : kKernels[mr - 1][nr - 1];
      kernel(a + m * lda, lda, w + b * groups * kPackGroupBytes, groups, w_sums + b * kPackCols,
                               c + (m - m0) * ldc + (b - b0) * kPackCols, ldc);
    }
  }
}

}  // namespace compress_ops
