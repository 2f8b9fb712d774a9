// AMX INT8 GEMM (tdpbusd): one instruction multiplies a 16-row x 64-byte activation tile by a
// 16-group x 64-byte weight tile into 16 x 16 int32 accumulators, 16K MACs. The packed weight
// layout is the B tile layout already: 16 consecutive groups of a column block, 64 bytes apart.
// Written against Intel's documented intrinsics; no machine this project is built on has AMX, so
// it is compiled everywhere and run only where the CPU and the OS offer it (tests skip otherwise).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "cpu/amx_tile.h"
#include "cpu/int8_gemm_packed.h"

namespace compress_ops {
namespace {

constexpr int64_t kTileRows = 16, kTileGroups = 16, kTileBytes = 64;

}  // namespace

bool amx_request_permission() {
#if defined(__linux__) && defined(__x86_64__)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // asm/prctl.h, Linux 5.16+
  static const bool granted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return granted;
#else
  return false;
#endif
}

// A: rows up to a multiple of 16 and lda >= round_up(4 * groups, 64), zero-padded (the caller's
// buffer); c: rows up to a multiple of 16.
__attribute__((target("amx-tile,amx-int8"))) void packed_tile_amx(const uint8_t* a, int64_t lda, const int8_t* w,
                                                                  const int32_t* w_sums, int64_t groups, int64_t m0,
                                                                  int64_t m1, int64_t n0, int64_t n1, int32_t* c,
                                                                  int64_t ldc) {
  AmxTileConfig config;
  for (int t = 0; t < 3; ++t) config.rows[t] = kTileRows, config.colsb[t] = kTileBytes;  // tmm0 C, tmm1 A, tmm2 B
  _tile_loadconfig(&config);
  alignas(64) int8_t tail[kTileGroups * kTileBytes];  // the last, partial weight tile, zero-padded
  alignas(64) int32_t acc[kTileRows * kPackCols];
  const int64_t b0 = n0 / kPackCols, b1 = (n1 + kPackCols - 1) / kPackCols;
  const int64_t chunks = (groups + kTileGroups - 1) / kTileGroups;
  for (int64_t b = b0; b < b1; ++b) {
    const int8_t* block = w + b * groups * kPackGroupBytes;
    for (int64_t m = m0; m < m1; m += kTileRows) {
      _tile_zero(0);
      for (int64_t kc = 0; kc < chunks; ++kc) {
        const int64_t g = kc * kTileGroups, have = std::min(kTileGroups, groups - g);
        const int8_t* b_tile = block + g * kPackGroupBytes;
        if (have < kTileGroups) {  // reading a whole tile here would run into the next block (or past the end)
          std::memset(tail, 0, sizeof(tail));
          std::memcpy(tail, b_tile, static_cast<size_t>(have * kPackGroupBytes));
          b_tile = tail;
        }
        _tile_loadd(1, a + m * lda + g * kPackK, lda);
        _tile_loadd(2, b_tile, kTileBytes);
        _tile_dpbusd(0, 1, 2);
      }
      _tile_stored(0, acc, kPackCols * sizeof(int32_t));
      const int64_t rows = std::min(kTileRows, m1 - m);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < kPackCols; ++j)
          c[(m - m0 + i) * ldc + (b - b0) * kPackCols + j] = acc[i * kPackCols + j] - 128 * w_sums[b * kPackCols + j];
    }
  }
  _tile_release();
}

}  // namespace compress_ops
