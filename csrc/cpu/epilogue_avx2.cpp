// The fused epilogue in AVX2: dequantize (two multiplies, in the reference's order), bias, and the
// exact-erf GELU with a vectorized erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7, the same
// approximation ATen's vectorized erf uses) over a Cephes-style exp. Scalar erf would cost more
// than the GEMM itself at BERT's FFN width.
#include <immintrin.h>

#include <cmath>

#include "cpu/int8_gemm.h"

namespace compress_ops {
namespace {

__attribute__((target("avx2,fma"))) inline __m256 exp_neg(__m256 x) {  // exp(x) for x <= 0
  const __m256 lo = _mm256_set1_ps(-87.3f);
  x = _mm256_max_ps(x, lo);
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2));
}

__attribute__((target("avx2,fma"))) inline __m256 erf_approx(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = exp_neg(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  const __m256 r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(r, sign);
}

}  // namespace

__attribute__((target("avx2,fma"))) void epilogue_row_avx2(const int32_t* c, int64_t n, float x_scale,
                                                           const float* w_scale, const float* bias, bool gelu,
                                                           float* out) {
  const __m256 xs = _mm256_set1_ps(x_scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 acc = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + j)));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(acc, xs), _mm256_loadu_ps(w_scale + j));
    if (bias != nullptr) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + j));
    if (gelu) {
      const __m256 half_y = _mm256_mul_ps(_mm256_set1_ps(0.5f), y);
      const __m256 erf = erf_approx(_mm256_mul_ps(y, _mm256_set1_ps(static_cast<float>(M_SQRT1_2))));
      y = _mm256_fmadd_ps(half_y, erf, half_y);
    }
    _mm256_storeu_ps(out + j, y);
  }
  if (j < n) epilogue_row_portable(c + j, n - j, x_scale, w_scale + j, bias ? bias + j : nullptr, gelu, out + j);
}

}  // namespace compress_ops
