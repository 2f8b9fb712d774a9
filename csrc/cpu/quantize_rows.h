// One row of per-token quantization; returns false when the row holds NaN or Inf.
// scale = absmax / 127 (1 where that is 0); q = clamp(round_half_even(x / scale), -127, 127).
#pragma once

#include <cstdint>

namespace compress_ops {

bool quantize_row_portable(const float* x, int64_t k, int8_t* q, float* scale);
bool quantize_row_avx2(const float* x, int64_t k, int8_t* q, float* scale);

}  // namespace compress_ops
