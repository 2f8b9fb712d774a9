// AVX-VNNI (the VEX-encoded, 256-bit vpdpbusd of CPUs without AVX-512): the same scheme as the
// AVX-512 VNNI kernel with a 16-column block in two ymm halves. MR rows x 2 halves = 12 of the
// 16 ymm registers as accumulators, 2 for the weights, 1 for the broadcast. The edge blocks
// (fewer rows) use the intrinsic in a template; the full block is written out.
#include <immintrin.h>

#include <algorithm>

#include "cpu/int8_gemm_packed.h"

namespace compress_ops {
namespace {

constexpr int kMr = 6;

#define COMPRESS_DPBUSD(acc, a, b) asm("%{vex%} vpdpbusd %[bv], %[av], %[c]" : [c] "+x"(acc) : [av] "x"(a), [bv] "x"(b))

// The full 6-row block with named accumulators and in-place accumulation: with an array, GCC 12
// copies every accumulator and stores it to the stack each group (see the AVX-512 kernel).
__attribute__((target("avx2,avxvnni"))) void micro_kernel_6(const uint8_t* a, int64_t lda, const int8_t* w,
                                                            int64_t groups, const int32_t* w_sums, int32_t* c,
                                                            int64_t ldc) {
#define COMPRESS_ROW_ACC(i) __m256i lo##i = _mm256_setzero_si256(), hi##i = lo##i;
  COMPRESS_ROW_ACC(0) COMPRESS_ROW_ACC(1) COMPRESS_ROW_ACC(2) COMPRESS_ROW_ACC(3) COMPRESS_ROW_ACC(4) COMPRESS_ROW_ACC(5)
#undef COMPRESS_ROW_ACC
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* wg = w + g * kPackGroupBytes;
    const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg));
    const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + 32));
#define COMPRESS_ROW_DOT(i)                                            \
  {                                                                    \
    int32_t four;                                                      \
    __builtin_memcpy(&four, a + (i) * lda + g * kPackK, sizeof(four)); \
    const __m256i av = _mm256_set1_epi32(four);                        \
    COMPRESS_DPBUSD(lo##i, av, w_lo);                                  \
    COMPRESS_DPBUSD(hi##i, av, w_hi);                                  \
  }
    COMPRESS_ROW_DOT(0) COMPRESS_ROW_DOT(1) COMPRESS_ROW_DOT(2) COMPRESS_ROW_DOT(3) COMPRESS_ROW_DOT(4) COMPRESS_ROW_DOT(5)
#undef COMPRESS_ROW_DOT
  }
  const __m256i off_lo = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums)), 7);
  const __m256i off_hi = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums + 8)), 7);
#define COMPRESS_ROW_STORE(i)                                                                            \
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + (i) * ldc), _mm256_sub_epi32(lo##i, off_lo));     \
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + (i) * ldc + 8), _mm256_sub_epi32(hi##i, off_hi));
  COMPRESS_ROW_STORE(0) COMPRESS_ROW_STORE(1) COMPRESS_ROW_STORE(2) COMPRESS_ROW_STORE(3) COMPRESS_ROW_STORE(4)
  COMPRESS_ROW_STORE(5)
#undef COMPRESS_ROW_STORE
}

template <int MR>
__attribute__((target("avx2,avxvnni"))) void micro_kernel(const uint8_t* a, int64_t lda, const int8_t* w,
                                                          int64_t groups, const int32_t* w_sums, int32_t* c,
                                                          int64_t ldc) {
  __m256i lo[MR], hi[MR];
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* wg = w + g * kPackGroupBytes;
    const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg));
    const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + 32));
    for (int i = 0; i < MR; ++i) {
      int32_t four;
      __builtin_memcpy(&four, a + i * lda + g * kPackK, sizeof(four));
      const __m256i av = _mm256_set1_epi32(four);
      lo[i] = _mm256_dpbusd_avx_epi32(lo[i], av, w_lo);
      hi[i] = _mm256_dpbusd_avx_epi32(hi[i], av, w_hi);
    }
  }
  const __m256i off_lo = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums)), 7);
  const __m256i off_hi = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sums + 8)), 7);
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * ldc), _mm256_sub_epi32(lo[i], off_lo));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * ldc + 8), _mm256_sub_epi32(hi[i], off_hi));
  }
}

using MicroKernel = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, const int32_t*, int32_t*, int64_t);
constexpr MicroKernel kKernels[kMr] = {&micro_kernel<1>, &micro_kernel<2>, &micro_kernel<3>,
                                       &micro_kernel<4>, &micro_kernel<5>, &micro_kernel_6};

}  // namespace

void packed_tile_avxvnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t groups,
                         int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  const int64_t b0 = n0 / kPackCols, b1 = (n1 + kPackCols - 1) / kPackCols;
  for (int64_t m = m0; m < m1; m += kMr) {
    const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
    for (int64_t b = b0; b < b1; ++b)
      kKernels[mr - 1](a + m * lda, lda, w + b * groups * kPackGroupBytes, groups, w_sums + b * kPackCols,
                       c + (m - m0) * ldc + (b - b0) * kPackCols, ldc);
  }
}

}  // namespace compress_ops
