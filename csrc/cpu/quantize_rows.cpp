// Per-row quantization kernels, portable and AVX2. Division (not a multiply by 1/scale) and
// round-half-to-even, so the result is bit-identical to the PyTorch reference.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "cpu/quantize_rows.h"

namespace compress_ops {
namespace {

// 1 where absmax / 127 is 0: an all-zero row, or one so tiny (< ~1e-43) that the division underflows.
inline float row_scale(float absmax) {
  const float s = absmax / 127.0f;
  return s == 0.0f ? 1.0f : s;
}

inline int8_t quantize_one(float x, float scale) {
  const float r = std::nearbyint(x / scale);  // the default rounding mode: half to even
  return static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, r)));
}

// round_half_even(x / scale) clamped to +-127, as int32 lanes.
__attribute__((target("avx2"))) inline __m256i to_int(const float* p, __m256 vs) {
  const __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(p), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), r)));
}

}  // namespace

bool quantize_row_portable(const float* x, int64_t k, int8_t* q, float* scale) {
  float absmax = 0.0f;
  bool finite = true;
  for (int64_t i = 0; i < k; ++i) {
    const float a = std::fabs(x[i]);
    finite &= std::isfinite(a);
    absmax = std::max(absmax, a);
  }
  if (!finite) return false;
  const float s = row_scale(absmax);
  for (int64_t i = 0; i < k; ++i) q[i] = quantize_one(x[i], s);
  *scale = s;
  return true;
}

__attribute__((target("avx2"))) bool quantize_row_avx2(const float* x, int64_t k, int8_t* q, float* scale) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(INFINITY);
  __m256 vmax = _mm256_setzero_ps();
  __m256 bad = _mm256_setzero_ps();  // lanes that saw NaN (unordered) or |x| = Inf
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
    vmax = _mm256_max_ps(vmax, a);
  }
  if (_mm256_movemask_ps(bad) != 0) return false;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float absmax = *std::max_element(lanes, lanes + 8);
  for (int64_t j = i; j < k; ++j) {
    const float a = std::fabs(x[j]);
    if (!std::isfinite(a)) return false;
    absmax = std::max(absmax, a);
  }
  const float s = row_scale(absmax);
  const __m256 vs = _mm256_set1_ps(s);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m256i ab = _mm256_packs_epi32(to_int(x + i, vs), to_int(x + i + 8, vs));
    const __m256i cd = _mm256_packs_epi32(to_int(x + i + 16, vs), to_int(x + i + 24, vs));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
  }
  for (; i < k; ++i) q[i] = quantize_one(x[i], s);
  *scale = s;
  return true;
}

}  // namespace compress_ops
