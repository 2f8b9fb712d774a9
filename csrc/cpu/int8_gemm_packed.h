// INT8 GEMM over weights packed once, at quantization time, in the layout VNNI and AMX read
// directly: blocks of 16 output columns, and within a block groups of 4 consecutive K, 64 bytes
// per group: packed[b][g][c][r] = W[16 b + c][4 g + r] (zero past N or K). One 64-byte load is
// then 16 columns x 4 K for vpdpbusd against 4 activation bytes broadcast to every lane, and 16
// consecutive groups are an AMX B tile. The layout is the same on every instruction set (AVX2
// widens it in registers, the portable path indexes it), so a model packed on one CPU runs on
// any other.
//
// Each tile routine computes C[m0:m1, n0:n1] = A[m0:m1, :K] . W[n0:n1, :K]^T in exact int32,
// n0 a multiple of 16, writing whole 16-column blocks (ldc >= round_up(n1 - n0, 16)).
#pragma once

#include <cstdint>

namespace compress_ops {

constexpr int64_t kPackCols = 16, kPackK = 4, kPackGroupBytes = kPackCols * kPackK;

inline int64_t packed_groups(int64_t k) { return (k + kPackK - 1) / kPackK; }

// Portable: A is q itself (int8 rows of K).
void packed_tile_portable(const int8_t* a, int64_t lda, int64_t k, const int8_t* w, int64_t groups, int64_t m0,
                          int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

// AVX2 (vpmaddwd): A widened to int16, rows of 4 * groups, zero-padded (pack_activations_avx2 of int8_gemm.h).
void packed_tile_avx2(const int16_t* a, int64_t lda, const int8_t* w, int64_t groups, int64_t m0, int64_t m1,
                      int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

// VNNI (vpdpbusd, unsigned x signed): A stored as q + 128 in uint8, rows of 4 * groups padded with
// zeros (pack_activations_avx512vnni of int8_gemm.h); w_sums[n] = sum_k W[n, k] undoes the offset
// (128 * w_sums subtracted from each result).
void packed_tile_avx512vnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t groups,
                            int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc);
void packed_tile_avxvnni(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t groups,
                         int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

// AMX (tdpbusd on 16 x 64-byte tiles): same A and w_sums as VNNI; A rows padded to a multiple of
// 64 bytes. Needs the OS to have granted this thread the AMX tile state (amx_request_permission).
bool amx_request_permission();
void packed_tile_amx(const uint8_t* a, int64_t lda, const int8_t* w, const int32_t* w_sums, int64_t groups,
                     int64_t m0, int64_t m1, int64_t n0, int64_t n1, int32_t* c, int64_t ldc);

}  // namespace compress_ops
