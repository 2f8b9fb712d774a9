// AVX2 GEMM over packed weights. AVX2 has no exact int8 dot product (vpmaddubsw saturates), so
// activations are widened to int16 once per call and each weight group is widened as it loads:
// 16 bytes = 4 columns x 4 K become 16 int16, and vpmaddwd against 4 activations broadcast
// (as one 64-bit lane pattern) gives each column two int32 partial sums, added at the end.
// MR rows x 4 column quads = 12 accumulators, plus 3 broadcasts and 1 weight: all 16 ymm.
#include <immintrin.h>

#include <algorithm>

#include "cpu/int8_gemm_packed.h"

namespace compress_ops {
namespace {

constexpr int kMr = 3;

template <int MR>
__attribute__((target("avx2"))) void micro_kernel(const int16_t* a, int64_t lda, const int8_t* w, int64_t groups,
                                                  int32_t* c, int64_t ldc) {
  __m256i acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i av[MR];
    for (int i = 0; i < MR; ++i) {
      int64_t four;
      __builtin_memcpy(&four, a + i * lda + g * kPackK, sizeof(four));
      av[i] = _mm256_set1_epi64x(four);
    }
    const int8_t* wg = w + g * kPackGroupBytes;
    for (int j = 0; j < 4; ++j) {
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg + 16 * j)));
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(av[i], wv));
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < 4; ++j) {
      alignas(32) int32_t lanes[8];  // column 4j + t's partial sums are lanes 2t and 2t + 1
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[i][j]);
      for (int t = 0; t < 4; ++t) c[i * ldc + 4 * j + t] = lanes[2 * t] + lanes[2 * t + 1];
    }
  }
}

// The full 3-row block: named accumulators, one widened weight quad live at a time, and no
// tree-PRE (which hoists the loads, runs out of the 16 ymm registers and spills accumulators).
__attribute__((target("avx2"), optimize("no-tree-pre"))) void micro_kernel_3(const int16_t* a, int64_t lda,
                                                                            const int8_t* w, int64_t groups,
                                                                            int32_t* c, int64_t ldc) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  __m256i c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  const int16_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda;
  for (int64_t g = 0; g < groups; ++g) {
    int64_t f0, f1, f2;
    __builtin_memcpy(&f0, a0 + g * kPackK, 8);
    __builtin_memcpy(&f1, a1 + g * kPackK, 8);
    __builtin_memcpy(&f2, a2 + g * kPackK, 8);
    const __m256i v0 = _mm256_set1_epi64x(f0), v1 = _mm256_set1_epi64x(f1), v2 = _mm256_set1_epi64x(f2);
    const int8_t* wg = w + g * kPackGroupBytes;
#define COMPRESS_QUAD(j)                                                                                    \
  {                                                                                                         \
    const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wg + 16 * j))); \
    c0##j = _mm256_add_epi32(c0##j, _mm256_madd_epi16(v0, wv));                                             \
    c1##j = _mm256_add_epi32(c1##j, _mm256_madd_epi16(v1, wv));                                             \
    c2##j = _mm256_add_epi32(c2##j, _mm256_madd_epi16(v2, wv));                                             \
  }
    COMPRESS_QUAD(0) COMPRESS_QUAD(1) COMPRESS_QUAD(2) COMPRESS_QUAD(3)
#undef COMPRESS_QUAD
  }
  const __m256i accs[3][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), accs[i][j]);
      for (int t = 0; t < 4; ++t) c[i * ldc + 4 * j + t] = lanes[2 * t] + lanes[2 * t + 1];
    }
  }
}

using MicroKernel = void (*)(const int16_t*, int64_t, const int8_t*, int64_t, int32_t*, int64_t);
constexpr MicroKernel kKernels[kMr] = {&micro_kernel<1>, &micro_kernel<2>, &micro_kernel_3};

}  // namespace

void packed_tile_avx2(const int16_t* a, int64_t lda, const int8_t* w, int64_t groups, int64_t m0, int64_t m1,
                      int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  const int64_t b0 = n0 / kPackCols, b1 = (n1 + kPackCols - 1) / kPackCols;
  for (int64_t m = m0; m < m1; m += kMr) {
    const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
    for (int64_t b = b0; b < b1; ++b)
      kKernels[mr - 1](a + m * lda, lda, w + b * groups * kPackGroupBytes, groups,
                       c + (m - m0) * ldc + (b - b0) * kPackCols, ldc);
  }
}

}  // namespace compress_ops
