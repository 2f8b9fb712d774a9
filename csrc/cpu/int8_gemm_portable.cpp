// The portable INT8 GEMM tile: plain loops the compiler vectorizes for the baseline ISA. It is
// the path on CPUs without AVX2 (and on non-x86), and the one the faster paths are tested against.
#include <cmath>

#include "cpu/int8_gemm.h"

namespace compress_ops {

void gemm_tile_portable(const int8_t* a, int64_t lda, const int8_t* w, int64_t k, int64_t m0, int64_t m1,
                        int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* arow = a + m * lda;
    for (int64_t n = n0; n < n1; ++n) {
      const int8_t* wrow = w + n * k;
      int32_t acc = 0;
      for (int64_t kk = 0; kk < k; ++kk) acc += static_cast<int32_t>(arow[kk]) * static_cast<int32_t>(wrow[kk]);
      c[(m - m0) * ldc + (n - n0)] = acc;
    }
  }
}

void epilogue_row_portable(const int32_t* c, int64_t n, float x_scale, const float* w_scale, const float* bias,
                           bool gelu, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    float y = static_cast<float>(c[j]) * x_scale * w_scale[j];
    if (bias != nullptr) y += bias[j];
    if (gelu) y = 0.5f * y * (1.0f + std::erf(y * static_cast<float>(M_SQRT1_2)));
    out[j] = y;
  }
}

}  // namespace compress_ops
