// Every schema of the `compress` operator library, in one place. The implementations live in
// cpu/*.cpp and cuda/*.cu (TORCH_LIBRARY_IMPL); the shape-only fakes and the plain-PyTorch
// references live in compress/ops.py, which defines these same schemas itself when this
// extension cannot be built or loaded.
#include <torch/library.h>

TORCH_LIBRARY(compress, m) {
  // Symmetric per-row INT8: scale = absmax(row) / 127 (1 for an all-zero row),
  // q = clamp(round_half_even(x / scale), -127, 127). Returns (q int8 [rows, cols], scale float32 [rows]).
  m.def("quantize_per_token(Tensor x) -> (Tensor, Tensor)");
  // (q @ w_q.T) accumulated in int32, then * x_scale[:, None] * w_scale[None, :] + bias, then
  // activation ("none" or "gelu", the exact erf form). Output float32, or out_dtype (CUDA: float16/bfloat16 too).
  m.def("int8_linear(Tensor q, Tensor x_scale, Tensor w_q, Tensor w_scale, Tensor? bias, str activation, ScalarType? out_dtype=None) -> Tensor");
  // int8_linear with the weights packed once for the CPU kernels (cpu/int8_gemm_packed.h; packed by
  // compress.ops.packing.pack_weight): w_packed [ceil(N/16), ceil(K/4), 16, 4] int8, w_sums [16 ceil(N/16)]
  // int32 (each output column's weight sum). CPU only; output float32.
  // Benchmarks only: run the INT8 multiply-accumulate instruction of the chosen CPU path alone on
  // registers on every thread for `iterations` loops; returns the MACs done (time it to get the peak).
  m.def("mac_peak(int iterations, str isa) -> int");
  m.def("int8_linear_packed(Tensor q, Tensor x_scale, Tensor w_packed, Tensor w_sums, Tensor w_scale, Tensor? bias, str activation) -> Tensor");
}
