// The portable GEMM over packed weights: plain loops over the packed layout, for CPUs without
// AVX2 (and non-x86), and the path the faster ones are tested against.
#include "cpu/int8_gemm_packed.h"

namespace compress_ops {

void packed_tile_portable(const int8_t* a, int64_t lda, int64_t k, const int8_t* w, int64_t groups, int64_t m0,
                          int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc) {
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* arow = a + m * lda;
    for (int64_t n = n0; n < n1; ++n) {
      const int8_t* column = w + (n / kPackCols) * groups * kPackGroupBytes + (n % kPackCols) * kPackK;
      int32_t acc = 0;
      for (int64_t kk = 0; kk < k; ++kk)
        acc += static_cast<int32_t>(arow[kk]) * column[(kk / kPackK) * kPackGroupBytes + kk % kPackK];
      c[(m - m0) * ldc + (n - n0)] = acc;
    }
  }
}

}  // namespace compress_ops
