// INT8 GEMM tiles for the CPU: C[m0:m1, n0:n1] = A[m0:m1, :K] . W[n0:n1, :K]^T in exact int32.
// Each instruction set has its own activation packing (done once per call) and its own tile
// routine; int8_linear.cpp owns the tiling, the threads and the epilogue. These files include
// no ATen header, so the per-function target attributes cannot leak into shared inline code.
#pragma once

#include <cstdint>

namespace compress_ops {

// Portable: A is q itself (int8, row stride lda = K).
void gemm_tile_portable(const int8_t* a, int64_t lda, const int8_t* w, int64_t k, int64_t m0, int64_t m1,
                        int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

// AVX2 (vpmaddwd): A widened to int16 with rows zero-padded to a multiple of 16, and zero rows
// up to a multiple of 4. The tile writes whole 4 x 3 blocks: c needs rows up to m0 + round_up(m1 - m0, 4)
// and ldc >= round_up(n1 - n0, 3); the caller ignores the padding.
constexpr int64_t kAvx2KStep = 16, kAvx2RowBlock = 4, kAvx2ColBlock = 3;
void pack_activations_avx2(const int8_t* q, int64_t m0, int64_t m1, int64_t k, int16_t* a, int64_t lda);
void gemm_tile_avx2(const int16_t* a, int64_t lda, const int8_t* w, int64_t k, int64_t m0, int64_t m1, int64_t n0,
                    int64_t n1, int32_t* c, int64_t ldc);

// AVX-512 VNNI (vpdpbusd, unsigned x signed): A stored as q + 128 in uint8, padded to a multiple
// of 64 with zeros; the tile subtracts 128 * sum(W[n, :]) (w_sums) to undo the offset exactly.
constexpr int64_t kVnniKStep = 64;
void pack_activations_avx512vnni(const int8_t* q, int64_t m0, int64_t m1, int64_t k, uint8_t* a, int64_t lda);
void weight_row_sums(const int8_t* w, int64_t n0, int64_t n1, int64_t k, int32_t* sums);
void gemm_tile_avx512vnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t k,
                          int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

// The fused epilogue of one output row: y = float(c) * x_scale * w_scale[n] (+ bias[n]), then GELU.
void epilogue_row_portable(const int32_t* c, int64_t n, float x_scale, const float* w_scale, const float* bias,
                           bool gelu, float* out);
void epilogue_row_avx2(const int32_t* c, int64_t n, float x_scale, const float* w_scale, const float* bias,
                       bool gelu, float* out);

// The epilogue of rows [m0, m1) x columns [n0, n1) of an [M, N] output whose int32 results start
// at c (row stride ldc); AVX2 unless the portable path runs.
inline void epilogue_rows(bool avx2, const int32_t* c, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                          int64_t n, const float* x_scale, const float* w_scale, const float* bias, bool gelu,
                          float* out) {
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t* crow = c + (m - m0) * ldc;
    const float* brow = bias ? bias + n0 : nullptr;
    if (avx2) {
      epilogue_row_avx2(crow, n1 - n0, x_scale[m], w_scale + n0, brow, gelu, out + m * n + n0);
    } else {
      epilogue_row_portable(crow, n1 - n0, x_scale[m], w_scale + n0, brow, gelu, out + m * n + n0);
    }
  }
}

}  // namespace compress_ops
