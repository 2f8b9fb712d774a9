// Argument checks shared by the CPU and CUDA implementations, so both reject the same bad
// input with the same message: the op's name, the argument, what it got and what it needs.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <string>

namespace compress_ops {

enum class Activation { kNone, kGelu };

// Largest K whose int32 accumulator cannot overflow: K * 127 * 127 < 2^31.
constexpr int64_t kMaxReduction = 133143;

inline void check_quantize_args(const at::Tensor& x, bool allow_half) {
  TORCH_CHECK(x.dim() == 2, "compress::quantize_per_token: x must be 2-D [rows, cols], got ", x.dim(),
              "-D; flatten the leading dimensions first (x.reshape(-1, x.shape[-1]))");
  const bool ok_dtype = x.scalar_type() == at::kFloat ||
      (allow_half && (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16));
  TORCH_CHECK(ok_dtype, "compress::quantize_per_token: x must be ",
              allow_half ? "float32, float16 or bfloat16" : "float32 on CPU", ", got ", x.scalar_type());
  TORCH_CHECK(x.is_contiguous(), "compress::quantize_per_token: x must be contiguous; call x.contiguous() first");
}

struct LinearShape {
  int64_t m, n, k;
  Activation activation;
  at::ScalarType out_dtype;
};

inline LinearShape check_int8_linear_args(const at::Tensor& q, const at::Tensor& x_scale, const at::Tensor& w_q,
                                          const at::Tensor& w_scale, const c10::optional<at::Tensor>& bias,
                                          const std::string& activation,
                                          c10::optional<at::ScalarType> out_dtype, bool allow_half_out) {
  constexpr const char* op = "compress::int8_linear: ";
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kChar, op, "q must be a 2-D int8 tensor [M, K], got ",
              q.dim(), "-D ", q.scalar_type());
  TORCH_CHECK(w_q.dim() == 2 && w_q.scalar_type() == at::kChar, op,
              "w_q must be a 2-D int8 tensor [N, K] (out_features, in_features), got ", w_q.dim(), "-D ",
              w_q.scalar_type());
  TORCH_CHECK(q.size(1) == w_q.size(1), op, "q has K=", q.size(1), " columns but w_q has ", w_q.size(1),
              " (in_features); they must match");
  TORCH_CHECK(q.size(1) <= kMaxReduction, op, "K=", q.size(1), " could overflow the int32 accumulator; at most ",
              kMaxReduction);
  TORCH_CHECK(x_scale.dim() == 1 && x_scale.scalar_type() == at::kFloat && x_scale.size(0) == q.size(0), op,
              "x_scale must be float32 [M]=[", q.size(0), "], got ", x_scale.scalar_type(), " ", x_scale.sizes());
  TORCH_CHECK(w_scale.dim() == 1 && w_scale.scalar_type() == at::kFloat && w_scale.size(0) == w_q.size(0), op,
              "w_scale must be float32 [N]=[", w_q.size(0), "], got ", w_scale.scalar_type(), " ", w_scale.sizes());
  for (const at::Tensor* t : {&q, &x_scale, &w_q, &w_scale}) {
    TORCH_CHECK(t->device() == q.device(), op, "every tensor must be on q's device (", q.device(), "), got one on ",
                t->device());
    TORCH_CHECK(t->is_contiguous(), op, "q, x_scale, w_q, w_scale and bias must be contiguous; call .contiguous() first");
  }
  if (bias.has_value()) {
    const at::Tensor& b = *bias;
    TORCH_CHECK(b.dim() == 1 && b.scalar_type() == at::kFloat && b.size(0) == w_q.size(0), op,
                "bias must be float32 [N]=[", w_q.size(0), "], got ", b.scalar_type(), " ", b.sizes());
    TORCH_CHECK(b.device() == q.device(), op, "bias must be on q's device (", q.device(), "), got ", b.device());
    TORCH_CHECK(b.is_contiguous(), op, "bias must be contiguous; call .contiguous() first");
  }
  Activation act;
  if (activation == "none") {
    act = Activation::kNone;
  } else if (activation == "gelu") {
    act = Activation::kGelu;
  } else {
    TORCH_CHECK(false, op, "activation must be \"none\" or \"gelu\", got \"", activation, "\"");
  }
  const at::ScalarType out = out_dtype.value_or(at::kFloat);
  const bool ok_out = out == at::kFloat || (allow_half_out && (out == at::kHalf || out == at::kBFloat16));
  TORCH_CHECK(ok_out, op, "out_dtype must be ", allow_half_out ? "float32, float16 or bfloat16" : "float32 on CPU",
              ", got ", out);
  return {q.size(0), w_q.size(0), q.size(1), act, out};
}

// int8_linear_packed: as int8_linear, with the weights in the packed layout of
// cpu/int8_gemm_packed.h (w_packed [ceil(N/16), ceil(K/4), 16, 4] int8, w_sums [16 ceil(N/16)] int32).
inline LinearShape check_int8_linear_packed_args(const at::Tensor& q, const at::Tensor& x_scale,
                                                 const at::Tensor& w_packed, const at::Tensor& w_sums,
                                                 const at::Tensor& w_scale, const c10::optional<at::Tensor>& bias,
                                                 const std::string& activation) {
  constexpr const char* op = "compress::int8_linear_packed: ";
  TORCH_CHECK(q.dim() == 2 && q.scalar_type() == at::kChar, op, "q must be a 2-D int8 tensor [M, K], got ",
              q.dim(), "-D ", q.scalar_type());
  TORCH_CHECK(w_scale.dim() == 1 && w_scale.scalar_type() == at::kFloat, op, "w_scale must be float32 [N], got ",
              w_scale.scalar_type(), " ", w_scale.sizes());
  const int64_t n = w_scale.size(0), k = q.size(1), blocks = (n + 15) / 16, groups = (k + 3) / 4;
  TORCH_CHECK(w_packed.scalar_type() == at::kChar && w_packed.dim() == 4 && w_packed.size(0) == blocks &&
                  w_packed.size(1) == groups && w_packed.size(2) == 16 && w_packed.size(3) == 4,
              op, "w_packed must be int8 [", blocks, ", ", groups, ", 16, 4] for N=", n, ", K=", k, ", got ",
              w_packed.scalar_type(), " ", w_packed.sizes(), "; pack it with compress.ops.packing.pack_weight");
  TORCH_CHECK(w_sums.dim() == 1 && w_sums.scalar_type() == at::kInt && w_sums.size(0) == blocks * 16, op,
              "w_sums must be int32 [", blocks * 16, "], got ", w_sums.scalar_type(), " ", w_sums.sizes());
  TORCH_CHECK(k <= kMaxReduction, op, "K=", k, " could overflow the int32 accumulator; at most ", kMaxReduction);
  TORCH_CHECK(x_scale.dim() == 1 && x_scale.scalar_type() == at::kFloat && x_scale.size(0) == q.size(0), op,
              "x_scale must be float32 [M]=[", q.size(0), "], got ", x_scale.scalar_type(), " ", x_scale.sizes());
  for (const at::Tensor* t : {&q, &x_scale, &w_packed, &w_sums, &w_scale}) {
    TORCH_CHECK(t->device().is_cpu(), op, "runs on the CPU only; every tensor must be on the CPU, got one on ",
                t->device(), " (on a GPU, use int8_linear with unpacked weights)");
    TORCH_CHECK(t->is_contiguous(), op, "every tensor must be contiguous; call .contiguous() first");
  }
  if (bias.has_value()) {
    const at::Tensor& b = *bias;
    TORCH_CHECK(b.dim() == 1 && b.scalar_type() == at::kFloat && b.size(0) == n && b.device().is_cpu() &&
                    b.is_contiguous(),
                op, "bias must be a contiguous float32 CPU tensor [N]=[", n, "], got ", b.scalar_type(), " ",
                b.sizes(), " on ", b.device());
  }
  TORCH_CHECK(activation == "none" || activation == "gelu", op, "activation must be \"none\" or \"gelu\", got \"",
              activation, "\"");
  return {q.size(0), n, k, activation == "gelu" ? Activation::kGelu : Activation::kNone, at::kFloat};
}

}  // namespace compress_ops
