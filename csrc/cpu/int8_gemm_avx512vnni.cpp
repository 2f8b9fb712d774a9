// AVX-512 VNNI INT8 GEMM: vpdpbusd multiplies 64 unsigned x signed byte pairs and adds each four
// into an int32 lane exactly (no int16 saturation step), one instruction per 64 MACs. It needs an
// unsigned operand, so activations are stored as q + 128 and the tile subtracts
// 128 * sum_k W[n, k] afterwards, which restores q . W exactly. Weight tails load with a byte mask
// (masked-off bytes are neither read nor faulted on), activations are zero-padded.
#include <immintrin.h>

#include <algorithm>

#include "cpu/int8_gemm.h"

namespace compress_ops {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 4;  // 16 zmm accumulators of the 32

template <int MR, int NR>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void micro_kernel(const uint8_t* a, int64_t lda,
                                                                         const int8_t* const* w_rows, int64_t k,
                                                                         int32_t* c, int64_t ldc,
                                                                         const int32_t* w_sums) {
  __m512i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  for (int64_t kk = 0; kk < k; kk += 64) {
    const int64_t left = k - kk;
    const __mmask64 mask = left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1);
    __m512i wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_epi8(mask, w_rows[j] + kk);
    for (int i = 0; i < MR; ++i) {
      const __m512i av = _mm512_loadu_si512(a + i * lda + kk);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, wv[j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = _mm512_reduce_add_epi32(acc[i][j]) - 128 * w_sums[j];
}

using MicroKernel = void (*)(const uint8_t*, int64_t, const int8_t* const*, int64_t, int32_t*, int64_t,
                             const int32_t*);

template <int MR>
constexpr MicroKernel kernels_for_rows[kNr] = {&micro_kernel<MR, 1>, &micro_kernel<MR, 2>, &micro_kernel<MR, 3>,
                                               &micro_kernel<MR, 4>};

constexpr const MicroKernel* kKernels[kMr] = {kernels_for_rows<1>, kernels_for_rows<2>, kernels_for_rows<3>,
                                              kernels_for_rows<4>};

}  // namespace

void pack_activations_avx512vnni(const int8_t* q, int64_t m0, int64_t m1, int64_t k, uint8_t* a, int64_t lda) {
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* src = q + m * k;
    uint8_t* dst = a + m * lda;
    int64_t kk = 0;
    for (; kk < k; ++kk) dst[kk] = static_cast<uint8_t>(static_cast<int32_t>(src[kk]) + 128);
    for (; kk < lda; ++kk) dst[kk] = 0;  // zero, not 128: padding must contribute nothing
  }
}

void weight_row_sums(const int8_t* w, int64_t n0, int64_t n1, int64_t k, int32_t* sums) {
  for (int64_t n = n0; n < n1; ++n) {
    int32_t s = 0;
    const int8_t* row = w + n * k;
    for (int64_t kk = 0; kk < k; ++kk) s += row[kk];
    sums[n] = s;
  }
}

void gemm_tile_avx512vnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t k,
                          int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  for (int64_t m = m0; m < m1; m += kMr) {
    const int mr = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
    for (int64_t n = n0; n < n1; n += kNr) {
      const int nr = static_cast<int>(std::min<int64_t>(kNr, n1 - n));
      const int8_t* rows[kNr];
      for (int j = 0; j < nr; ++j) rows[j] = w + (n + j) * k;
      kKernels[mr - 1][nr - 1](a + m * lda, lda, rows, k, c + (m - m0) * ldc + (n - n0), ldc, w_sums + n);
    }
  }
}

}  // namespace compress_ops
