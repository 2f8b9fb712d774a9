// AVX2 INT8 GEMM. AVX2 has no int8 dot product without saturation (vpmaddubsw saturates its
// int16 pair sums for unsigned x signed inputs), so both operands are widened to int16 and
// multiplied with vpmaddwd: 16 exact MACs per instruction into int32 lanes. Activations are
// widened once per call into a padded buffer; weights are widened in registers as they load.
// The micro-kernel keeps MR x NR accumulators of 8 partial dot products each (12 of the 16
// ymm registers) and reduces them horizontally once per tile, so K stays the inner loop.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <vector>

#include "cpu/int8_gemm.h"

namespace compress_ops {
namespace {

constexpr int kMr = 4;  // activation rows per micro-kernel (an MR x K int16 panel stays in L1)
constexpr int kNr = 3;  // weight rows per micro-kernel

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

__attribute__((target("avx2"))) inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// One 4 x 3 block of C. a: 4 padded int16 rows (stride lda); w_rows: 3 weight rows of K int8.
// tails[j] holds the last K % 16 weights of row j zero-padded to 16, so no load runs past the end
// of the weight tensor. Twelve named accumulators (an array of them ended up on the stack), and
// no tree-PRE: at -O3 GCC 12 hoists the multiplies above the adds, runs out of the 16 ymm
// registers and spills accumulators on every iteration.
__attribute__((target("avx2"), optimize("no-tree-pre"))) void micro_kernel_4x3(const int16_t* a, int64_t lda, const int8_t* const* w_rows,
                                                      const int8_t (*tails)[16], int64_t k16, bool has_tail,
                                                      int32_t* c, int64_t ldc) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  __m256i c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  const int8_t *w0 = w_rows[0], *w1 = w_rows[1], *w2 = w_rows[2];
  const int16_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
  auto step = [&](const int8_t* p0, const int8_t* p1, const int8_t* p2, int64_t kk) __attribute__((target("avx2"))) {
    const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0)));
    const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)));
    const __m256i b2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p2)));
#define COMPRESS_ROW(i)                                                                  \
  {                                                                                      \
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a##i + kk)); \
    c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(av, b0));                     \
    c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(av, b1));                     \
    c##i##2 = _mm256_add_epi32(c##i##2, _mm256_madd_epi16(av, b2));                     \
  }
    COMPRESS_ROW(0) COMPRESS_ROW(1) COMPRESS_ROW(2) COMPRESS_ROW(3)
#undef COMPRESS_ROW
  };
  for (int64_t kk = 0; kk < k16; kk += 16) step(w0 + kk, w1 + kk, w2 + kk, kk);
  if (has_tail) step(tails[0], tails[1], tails[2], k16);  // the padded activations are zero past K
#define COMPRESS_STORE(i)                                                           \
  c[i * ldc + 0] = hsum(c##i##0), c[i * ldc + 1] = hsum(c##i##1), c[i * ldc + 2] = hsum(c##i##2);
  COMPRESS_STORE(0) COMPRESS_STORE(1) COMPRESS_STORE(2) COMPRESS_STORE(3)
#undef COMPRESS_STORE
}

}  // namespace

__attribute__((target("avx2"))) void pack_activations_avx2(const int8_t* q, int64_t m0, int64_t m1, int64_t k,
                                                           int16_t* a, int64_t lda) {
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* src = q + m * k;
    int16_t* dst = a + m * lda;
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + kk),
                          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + kk))));
    for (; kk < k; ++kk) dst[kk] = src[kk];
    for (; kk < lda; ++kk) dst[kk] = 0;
  }
}

void gemm_tile_avx2(const int16_t* a, int64_t lda, const int8_t* w, int64_t k, int64_t m0, int64_t m1, int64_t n0,
                    int64_t n1, int32_t* c, int64_t ldc) {
  const int64_t k16 = k / 16 * 16;
  const bool has_tail = k16 != k;
  const int64_t nb = n1 - n0;
  // Weight rows past n1 in the last 4 x 3 block read zeros (their results land in the padding of c).
  std::vector<int8_t> zeros(nb % kNr ? static_cast<size_t>(k) : 0, 0);
  // The weight tails of this tile, copied once.
  std::vector<std::array<int8_t, 16>> tails(has_tail ? static_cast<size_t>(round_up(nb, kNr)) : 0);
  for (int64_t n = n0; has_tail && n < n0 + round_up(nb, kNr); ++n) {
    tails[n - n0].fill(0);
    if (n < n1) std::memcpy(tails[n - n0].data(), w + n * k + k16, static_cast<size_t>(k - k16));
  }
  for (int64_t m = m0; m < m1; m += kMr) {
    for (int64_t n = n0; n < n1; n += kNr) {
      const int8_t* rows[kNr];
      for (int j = 0; j < kNr; ++j) rows[j] = n + j < n1 ? w + (n + j) * k : zeros.data();
      const auto* t = has_tail ? reinterpret_cast<const int8_t(*)[16]>(tails[n - n0].data()) : nullptr;
      micro_kernel_4x3(a + m * lda, lda, rows, t, k16, has_tail, c + (m - m0) * ldc + (n - n0), ldc);
    }
  }
}

}  // namespace compress_ops
