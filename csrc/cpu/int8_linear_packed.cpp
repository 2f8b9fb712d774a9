// compress::int8_linear_packed on the CPU: int8_linear with the weights packed once (at
// quantization) in the VNNI/AMX layout of int8_gemm_packed.h. Per call it only prepares the
// activations for the chosen instruction set, then splits the output into tiles sized for the
// caches, and runs each tile 48 rows at a time: the GEMM into a small int32 buffer, then the
// fused epilogue (dequantize, bias, GELU) while that buffer is still in L1/L2. Rows split across threads for large M,
// columns for small M.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "cpu/cpu_isa.h"
#include "cpu/int8_gemm.h"
#include "cpu/int8_gemm_packed.h"
#include "op_checks.h"

namespace compress_ops {
namespace {

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// 48 rows divide by every micro-kernel's row count (3, 6, 8, 16); 16 columns are one packed block.
constexpr int64_t kRowStep = 48, kColStep = kPackCols, kColPanel = 3 * kPackCols;

struct Tiling {
  int64_t mb, nb;
};

// A tile's activation rows and weight panel together fit in a core's L2 (512 KiB on the smallest
// we target); the micro-kernels walk an MR-row strip of it from L1.
Tiling choose_tiling(int64_t m, int64_t n, int64_t lda_bytes, int64_t k_padded) {
  const int64_t a_budget = 192 * 1024, w_budget = 256 * 1024;
  int64_t mb = std::clamp<int64_t>(a_budget / std::max<int64_t>(lda_bytes, 1) / kRowStep * kRowStep, kRowStep, 480);
  int64_t nb = std::clamp<int64_t>(w_budget / std::max<int64_t>(k_padded, 1) / kColPanel * kColPanel, kColPanel, 480);
  mb = std::min(mb, m);
  nb = std::min(nb, round_up(n, kColStep));
  const int64_t threads = at::get_num_threads();
  const auto tiles = [&] { return ((m + mb - 1) / mb) * ((n + nb - 1) / nb); };
  // Enough tiles that every thread gets work: split the rows while there are many (each tile then
  // keeps its whole weight panel), then the columns in whole 48-column panels, which the widest
  // micro-kernels fill (narrower ones only at the right edge).
  while (mb > kRowStep && tiles() < 4 * threads) mb = std::max(kRowStep, mb / 2 / kRowStep * kRowStep);
  while (nb > kColPanel && tiles() < 4 * threads) nb = std::max(kColPanel, nb / 2 / kColPanel * kColPanel);
  return {mb, nb};
}

at::Tensor int8_linear_packed_cpu(const at::Tensor& q, const at::Tensor& x_scale, const at::Tensor& w_packed,
                                  const at::Tensor& w_sums, const at::Tensor& w_scale,
                                  const c10::optional<at::Tensor>& bias, c10::string_view activation) {
  const LinearShape s =
      check_int8_linear_packed_args(q, x_scale, w_packed, w_sums, w_scale, bias, std::string(activation));
  at::Tensor out = at::empty({s.m, s.n}, q.options().dtype(at::kFloat));
  if (s.m == 0 || s.n == 0) return out;
  const CpuIsa isa = select_cpu_isa("compress::int8_linear_packed");
  const int64_t groups = packed_groups(s.k), k_padded = groups * kPackK;
  const int8_t* qp = q.data_ptr<int8_t>();
  const int8_t* wp = w_packed.data_ptr<int8_t>();
  const int32_t* sp = w_sums.data_ptr<int32_t>();
  const float* xs = x_scale.data_ptr<float>();
  const float* ws = w_scale.data_ptr<float>();
  const float* bp = bias.has_value() ? bias->data_ptr<float>() : nullptr;
  const bool gelu = s.activation == Activation::kGelu;
  float* op = out.data_ptr<float>();

  // The activations in the form the chosen kernels read, built once per call.
  at::Tensor packed;
  int64_t lda = s.k, lda_bytes = s.k;
  if (isa == CpuIsa::kAvx2) {
    lda = k_padded, lda_bytes = 2 * lda;
    packed = at::empty({s.m, lda}, q.options().dtype(at::kShort));
    int16_t* ap = packed.data_ptr<int16_t>();
    at::parallel_for(0, s.m, 64, [&](int64_t b, int64_t e) { pack_activations_avx2(qp, b, e, s.k, ap, lda); });
  } else if (isa != CpuIsa::kPortable) {
    // AMX reads whole 16-row x 64-byte tiles: zero rows and bytes up to those.
    const bool amx = isa == CpuIsa::kAmx;
    lda = lda_bytes = amx ? round_up(k_padded, 64) : k_padded;
    const int64_t rows = amx ? round_up(s.m, 16) : s.m;
    packed = at::empty({rows, lda}, q.options().dtype(at::kByte));
    uint8_t* ap = packed.data_ptr<uint8_t>();
    std::fill(ap + s.m * lda, ap + rows * lda, uint8_t{0});
    at::parallel_for(0, s.m, 64, [&](int64_t b, int64_t e) { pack_activations_avx512vnni(qp, b, e, s.k, ap, lda); });
  }

  const Tiling t = choose_tiling(s.m, s.n, lda_bytes, k_padded);
  const int64_t m_tiles = (s.m + t.mb - 1) / t.mb, n_tiles = (s.n + t.nb - 1) / t.nb;
  const bool column_major = m_tiles < n_tiles;  // consecutive tiles of a thread share activations or weights
  at::parallel_for(0, m_tiles * n_tiles, 1, [&](int64_t begin, int64_t end) {
    // One strip of rows at a time: its int32 results (at most 48 x 480) stay in L1/L2 until the
    // epilogue has read them. Whole 16-column blocks (and, for AMX, 16-row tiles) land here.
    const int64_t ldc = round_up(t.nb, kColStep);
    std::vector<int32_t> c(static_cast<size_t>(kRowStep * ldc));
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t mi = column_major ? tile / n_tiles : tile % m_tiles;
      const int64_t ni = column_major ? tile % n_tiles : tile / m_tiles;
      const int64_t n0 = ni * t.nb, n1 = std::min(s.n, n0 + t.nb);
      const int64_t tile_end = std::min(s.m, (mi + 1) * t.mb);
      for (int64_t m0 = mi * t.mb; m0 < tile_end; m0 += kRowStep) {
        const int64_t m1 = std::min(tile_end, m0 + kRowStep);
        switch (isa) {
          case CpuIsa::kAmx:
            packed_tile_amx(packed.data_ptr<uint8_t>(), lda, wp, sp, groups, m0, m1, n0, n1, c.data(), ldc);
            break;
          case CpuIsa::kAvx512Vnni:
            packed_tile_avx512vnni(packed.data_ptr<uint8_t>(), lda, wp, sp, groups, m0, m1, n0, n1, c.data(), ldc);
            break;
          case CpuIsa::kAvxVnni:
            packed_tile_avxvnni(packed.data_ptr<uint8_t>(), lda, wp, sp, groups, m0, m1, n0, n1, c.data(), ldc);
            break;
          case CpuIsa::kAvx2:
            packed_tile_avx2(packed.data_ptr<int16_t>(), lda, wp, groups, m0, m1, n0, n1, c.data(), ldc);
            break;
          default:
            packed_tile_portable(qp, s.k, s.k, wp, groups, m0, m1, n0, n1, c.data(), ldc);
        }
        epilogue_rows(isa != CpuIsa::kPortable, c.data(), ldc, m0, m1, n0, n1, s.n, xs, ws, bp, gelu, op);
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(compress, CPU, m) { m.impl("int8_linear_packed", &int8_linear_packed_cpu); }

}  // namespace compress_ops
