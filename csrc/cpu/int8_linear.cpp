// compress::int8_linear on the CPU: pack the activations for the chosen instruction set once,
// split the output into tiles sized for the caches, and for each tile run the INT8 GEMM into a
// small int32 buffer and the fused epilogue (dequantize, bias, GELU) while it is still in L1/L2.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "cpu/cpu_isa.h"
#include "cpu/int8_gemm.h"
#include "op_checks.h"

namespace compress_ops {
namespace {

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Tile sizes: a tile's activation rows (MB x K) and weight rows (NB x K) together fit in a
// core's L2 (512 KiB on the smallest we target); the micro-kernels walk them from L1.
struct Tiling {
  int64_t mb, nb;
};

Tiling choose_tiling(int64_t m, int64_t n, int64_t lda_bytes, int64_t k) {
  const int64_t a_budget = 192 * 1024, w_budget = 128 * 1024;
  int64_t mb = std::clamp<int64_t>(a_budget / std::max<int64_t>(lda_bytes, 1) / 4 * 4, 4, 256);
  int64_t nb = std::clamp<int64_t>(w_budget / std::max<int64_t>(k, 1) / 12 * 12, 12, 240);
  mb = std::min(mb, m);
  // Enough tiles that every thread gets work: split N further when M gives few tiles.
  const int64_t threads = at::get_num_threads();
  const int64_t m_tiles = (m + mb - 1) / mb;
  while (nb > 12 && m_tiles * ((n + nb - 1) / nb) < 4 * threads) nb = std::max<int64_t>(12, nb / 2 / 12 * 12);
  return {mb, std::min(nb, n)};
}

at::Tensor int8_linear_cpu(const at::Tensor& q, const at::Tensor& x_scale, const at::Tensor& w_q,
                           const at::Tensor& w_scale, const c10::optional<at::Tensor>& bias,
                           c10::string_view activation, c10::optional<at::ScalarType> out_dtype) {
  const LinearShape s = check_int8_linear_args(q, x_scale, w_q, w_scale, bias, std::string(activation), out_dtype,
                                               /*allow_half_out=*/false);
  at::Tensor out = at::empty({s.m, s.n}, q.options().dtype(at::kFloat));
  if (s.m == 0 || s.n == 0) return out;
  const CpuIsa isa = rows_kernel_isa(select_cpu_isa("compress::int8_linear"));
  const int8_t* qp = q.data_ptr<int8_t>();
  const int8_t* wp = w_q.data_ptr<int8_t>();
  const float* xs = x_scale.data_ptr<float>();
  const float* ws = w_scale.data_ptr<float>();
  const float* bp = bias.has_value() ? bias->data_ptr<float>() : nullptr;
  const bool gelu = s.activation == Activation::kGelu;
  float* op = out.data_ptr<float>();

  // Pack the activations (and, for VNNI, the weight row sums) for the chosen kernels.
  at::Tensor packed, sums;
  int64_t lda = s.k, lda_bytes = s.k;
  if (isa == CpuIsa::kAvx2) {
    lda = round_up(std::max<int64_t>(s.k, 1), kAvx2KStep);
    lda_bytes = 2 * lda;
    // Zero rows up to a multiple of the micro-kernel's 4 rows.
    const int64_t rows = round_up(s.m, kAvx2RowBlock);
    packed = at::empty({rows, lda}, q.options().dtype(at::kShort));
    int16_t* ap = packed.data_ptr<int16_t>();
    std::fill(ap + s.m * lda, ap + rows * lda, int16_t{0});
    at::parallel_for(0, s.m, 64, [&](int64_t b, int64_t e) { pack_activations_avx2(qp, b, e, s.k, ap, lda); });
  } else if (isa == CpuIsa::kAvx512Vnni) {
    lda = lda_bytes = round_up(std::max<int64_t>(s.k, 1), kVnniKStep);
    packed = at::empty({s.m, lda}, q.options().dtype(at::kByte));
    sums = at::empty({s.n}, q.options().dtype(at::kInt));
    uint8_t* ap = packed.data_ptr<uint8_t>();
    int32_t* sp = sums.data_ptr<int32_t>();
    at::parallel_for(0, s.m, 64, [&](int64_t b, int64_t e) { pack_activations_avx512vnni(qp, b, e, s.k, ap, lda); });
    at::parallel_for(0, s.n, 256, [&](int64_t b, int64_t e) { weight_row_sums(wp, b, e, s.k, sp); });
  }

  const Tiling t = choose_tiling(s.m, s.n, lda_bytes, s.k);
  const int64_t m_tiles = (s.m + t.mb - 1) / t.mb, n_tiles = (s.n + t.nb - 1) / t.nb;
  at::parallel_for(0, m_tiles * n_tiles, 1, [&](int64_t begin, int64_t end) {
    // Room for whole micro-kernel blocks: the AVX2 tile writes 4 x 3 blocks past a ragged edge.
    const int64_t ldc = round_up(t.nb, kAvx2ColBlock);
    std::vector<int32_t> c(static_cast<size_t>(round_up(t.mb, kAvx2RowBlock) * ldc));
    for (int64_t tile = begin; tile < end; ++tile) {
      // N-major order: consecutive tiles of one thread reuse the same weight rows.
      const int64_t m0 = (tile % m_tiles) * t.mb, n0 = (tile / m_tiles) * t.nb;
      const int64_t m1 = std::min(s.m, m0 + t.mb), n1 = std::min(s.n, n0 + t.nb);
      if (s.k == 0) {
        std::fill(c.begin(), c.end(), 0);
      } else if (isa == CpuIsa::kAvx2) {
        gemm_tile_avx2(packed.data_ptr<int16_t>(), lda, wp, s.k, m0, m1, n0, n1, c.data(), ldc);
      } else if (isa == CpuIsa::kAvx512Vnni) {
        gemm_tile_avx512vnni(packed.data_ptr<uint8_t>(), lda, wp, sums.data_ptr<int32_t>(), s.k, m0, m1, n0, n1,
                             c.data(), ldc);
      } else {
        gemm_tile_portable(qp, s.k, wp, s.k, m0, m1, n0, n1, c.data(), ldc);
      }
      epilogue_rows(isa != CpuIsa::kPortable, c.data(), ldc, m0, m1, n0, n1, s.n, xs, ws, bp, gelu, op);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(compress, CPU, m) { m.impl("int8_linear", &int8_linear_cpu); }

}  // namespace compress_ops
