// compress::quantize_per_token on the CPU: rows in parallel, AVX2 where the CPU has it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>

#include "cpu/cpu_isa.h"
#include "cpu/quantize_rows.h"
#include "op_checks.h"

namespace compress_ops {
namespace {

std::tuple<at::Tensor, at::Tensor> quantize_per_token_cpu(const at::Tensor& x) {
  check_quantize_args(x, /*allow_half=*/false);
  const int64_t m = x.size(0), k = x.size(1);
  at::Tensor q = at::empty({m, k}, x.options().dtype(at::kChar));
  at::Tensor scale = at::empty({m}, x.options().dtype(at::kFloat));
  const bool avx2 = select_cpu_isa("compress::quantize_per_token") != CpuIsa::kPortable;
  const float* xp = x.data_ptr<float>();
  int8_t* qp = q.data_ptr<int8_t>();
  float* sp = scale.data_ptr<float>();
  std::atomic<int64_t> bad_row{-1};
  // Grain: rows enough for ~32K elements a task, so small inputs stay on one thread.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(k, 1));
  at::parallel_for(0, m, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const bool ok = avx2 ? quantize_row_avx2(xp + r * k, k, qp + r * k, sp + r)
                           : quantize_row_portable(xp + r * k, k, qp + r * k, sp + r);
      if (!ok) {
        int64_t expected = -1;
        bad_row.compare_exchange_strong(expected, r);
        return;
      }
    }
  });
  TORCH_CHECK(bad_row.load() < 0, "compress::quantize_per_token: x contains NaN or Inf (row ", bad_row.load(),
              "); per-token scales cannot represent it. Check the model's inputs or the layer before this one");
  return {q, scale};
}

}  // namespace

TORCH_LIBRARY_IMPL(compress, CPU, m) { m.impl("quantize_per_token", &quantize_per_token_cpu); }

}  // namespace compress_ops
