// compress::mac_peak: the INT8 multiply-accumulate ceiling of one instruction set on this CPU,
// for the kernel benchmark to report our GEMM as a fraction of. Every thread runs a loop of the
// instruction alone on registers (24 independent accumulators, enough to cover its latency on
// every core we know), nothing loaded or stored; the caller times it and divides the MACs it
// returns by the time.
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <atomic>
#include <cstring>
#include <string>

#include "cpu/amx_tile.h"
#include "cpu/cpu_isa.h"

namespace compress_ops {
namespace {

#define COMPRESS_REPEAT24(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t loop_avx512vnni(int64_t iterations) {
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
#define COMPRESS_DECL(i) __m512i c##i = _mm512_set1_epi32(i);
  COMPRESS_REPEAT24(COMPRESS_DECL)
#undef COMPRESS_DECL
  for (int64_t it = 0; it < iterations; ++it) {
#define COMPRESS_STEP(i) asm volatile("vpdpbusd %[bv], %[av], %[c]" : [c] "+v"(c##i) : [av] "v"(a), [bv] "v"(b));
    COMPRESS_REPEAT24(COMPRESS_STEP)
#undef COMPRESS_STEP
  }
  __m512i sum = _mm512_setzero_si512();
#define COMPRESS_SUM(i) sum = _mm512_add_epi32(sum, c##i);
  COMPRESS_REPEAT24(COMPRESS_SUM)
#undef COMPRESS_SUM
  return _mm512_reduce_add_epi32(sum);
}

__attribute__((target("avx2,avxvnni"))) int32_t loop_avxvnni(int64_t iterations) {
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
#define COMPRESS_DECL(i) __m256i c##i = _mm256_set1_epi32(i);
  COMPRESS_REPEAT24(COMPRESS_DECL)  // 24 of 16 ymm would spill: the asm below uses 12 at a time
#undef COMPRESS_DECL
  for (int64_t it = 0; it < iterations; ++it) {
#define COMPRESS_STEP(i) asm volatile("%{vex%} vpdpbusd %[bv], %[av], %[c]" : [c] "+x"(c##i) : [av] "x"(a), [bv] "x"(b));
    COMPRESS_STEP(0) COMPRESS_STEP(1) COMPRESS_STEP(2) COMPRESS_STEP(3) COMPRESS_STEP(4) COMPRESS_STEP(5)
    COMPRESS_STEP(6) COMPRESS_STEP(7) COMPRESS_STEP(8) COMPRESS_STEP(9) COMPRESS_STEP(10) COMPRESS_STEP(11)
    COMPRESS_STEP(0) COMPRESS_STEP(1) COMPRESS_STEP(2) COMPRESS_STEP(3) COMPRESS_STEP(4) COMPRESS_STEP(5)
    COMPRESS_STEP(6) COMPRESS_STEP(7) COMPRESS_STEP(8) COMPRESS_STEP(9) COMPRESS_STEP(10) COMPRESS_STEP(11)
#undef COMPRESS_STEP
  }
  __m256i sum = _mm256_setzero_si256();
#define COMPRESS_SUM(i) sum = _mm256_add_epi32(sum, c##i);
  COMPRESS_REPEAT24(COMPRESS_SUM)
#undef COMPRESS_SUM
  return _mm256_extract_epi32(sum, 0);
}

// AVX2 has no exact int8 dot product: the peak of the path we use is vpmaddwd (16 int16 MACs)
// plus the vpaddd that accumulates it.
__attribute__((target("avx2"))) int32_t loop_avx2(int64_t iterations) {
  const __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(-2);
#define COMPRESS_DECL(i) __m256i c##i = _mm256_set1_epi32(i);
  COMPRESS_DECL(0) COMPRESS_DECL(1) COMPRESS_DECL(2) COMPRESS_DECL(3) COMPRESS_DECL(4) COMPRESS_DECL(5)
  COMPRESS_DECL(6) COMPRESS_DECL(7) COMPRESS_DECL(8) COMPRESS_DECL(9) COMPRESS_DECL(10) COMPRESS_DECL(11)
#undef COMPRESS_DECL
  for (int64_t it = 0; it < iterations; ++it) {
    for (int twice = 0; twice < 2; ++twice) {
#define COMPRESS_STEP(i)                                                       \
  {                                                                            \
    __m256i p = _mm256_madd_epi16(a, b);                                       \
    asm volatile("" : "+x"(p));                                                \
    c##i = _mm256_add_epi32(c##i, p);                                          \
  }
      COMPRESS_STEP(0) COMPRESS_STEP(1) COMPRESS_STEP(2) COMPRESS_STEP(3) COMPRESS_STEP(4) COMPRESS_STEP(5)
      COMPRESS_STEP(6) COMPRESS_STEP(7) COMPRESS_STEP(8) COMPRESS_STEP(9) COMPRESS_STEP(10) COMPRESS_STEP(11)
#undef COMPRESS_STEP
    }
  }
  __m256i sum = _mm256_setzero_si256();
#define COMPRESS_SUM(i) sum = _mm256_add_epi32(sum, c##i);
  COMPRESS_SUM(0) COMPRESS_SUM(1) COMPRESS_SUM(2) COMPRESS_SUM(3) COMPRESS_SUM(4) COMPRESS_SUM(5)
  COMPRESS_SUM(6) COMPRESS_SUM(7) COMPRESS_SUM(8) COMPRESS_SUM(9) COMPRESS_SUM(10) COMPRESS_SUM(11)
#undef COMPRESS_SUM
  return _mm256_extract_epi32(sum, 0);
}

// AMX: six tdpbusd a loop into four accumulator tiles from the same A and B tiles, 16 x 16 x 64 MACs each.
__attribute__((target("amx-tile,amx-int8"))) int32_t loop_amx(int64_t iterations) {
  AmxTileConfig config;
  for (int t = 0; t < 6; ++t) config.rows[t] = 16, config.colsb[t] = 64;
  _tile_loadconfig(&config);
  alignas(64) int8_t data[16 * 64];
  std::memset(data, 1, sizeof(data));
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  _tile_loadd(4, data, 64);
  _tile_loadd(5, data, 64);
  for (int64_t it = 0; it < iterations; ++it) {
    _tile_dpbusd(0, 4, 5); _tile_dpbusd(1, 4, 5); _tile_dpbusd(2, 4, 5); _tile_dpbusd(3, 4, 5);
    _tile_dpbusd(0, 4, 5); _tile_dpbusd(1, 4, 5);
  }
  alignas(64) int32_t out[16 * 16];
  _tile_stored(0, out, 64);
  _tile_release();
  return out[0];
}

// Returns the MACs done (all threads), so the caller's MACs/s needs only a clock.
int64_t mac_peak_cpu(int64_t iterations, c10::string_view isa_name_view) {
  TORCH_CHECK(iterations > 0, "compress::mac_peak: iterations must be positive, got ", iterations);
  const std::string wanted(isa_name_view);
  CpuIsa isa = select_cpu_isa("compress::mac_peak");
  if (!wanted.empty() && wanted != "auto") TORCH_CHECK(wanted == isa_name(isa), "compress::mac_peak: asked for ", wanted,
                                                       " but the kernels run ", isa_name(isa), "; set COMPRESS_OPS_CPU_ISA=", wanted);
  TORCH_CHECK(isa != CpuIsa::kPortable, "compress::mac_peak: the portable path has no single INT8 instruction to time");
  int64_t per_iteration = 0;
  int32_t (*loop)(int64_t) = nullptr;
  switch (isa) {
    case CpuIsa::kAmx: loop = &loop_amx, per_iteration = 6 * 16 * 16 * 64; break;
    case CpuIsa::kAvx512Vnni: loop = &loop_avx512vnni, per_iteration = 24 * 64; break;
    case CpuIsa::kAvxVnni: loop = &loop_avxvnni, per_iteration = 24 * 32; break;
    default: loop = &loop_avx2, per_iteration = 24 * 16; break;
  }
  const int64_t threads = at::get_num_threads();
  std::atomic<int32_t> sink{0};
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) sink += loop(iterations);
  });
  TORCH_CHECK(sink.load() != 0x7fffffff, "unreachable");  // keeps the loops' results alive
  return threads * iterations * per_iteration;
}

}  // namespace

// No tensor argument to dispatch on: the kernel serves every dispatch key.
TORCH_LIBRARY_IMPL(compress, CompositeExplicitAutograd, m) { m.impl("mac_peak", &mac_peak_cpu); }

}  // namespace compress_ops
