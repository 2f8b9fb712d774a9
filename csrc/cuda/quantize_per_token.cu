// CUDA implementation of compress::quantize_per_token (schema in ../ops.cpp).
//
// Per row: scale = absmax / 127 (1 where that is 0), q = clamp(round_half_even(x / scale), -127, 127),
// with IEEE division (__fdiv_rn) and round-half-to-even (__float2int_rn), so the result is bit-identical
// to the plain-PyTorch reference on any device.
//
// Memory-bound: each row is read once from DRAM. A warp (short rows) or a block (long rows) owns a row;
// the first pass keeps up to kCacheBytes of the row per thread in registers while it reduces the absmax,
// the second pass quantizes from those registers (only the part of a very long row that did not fit is
// read again, from L1/L2) and writes packed int8. 16-byte loads when every row start is 16-byte aligned.

// c10/cuda headers rather than ATen/cuda/CUDAContext.h: that one pulls in the cuBLAS/cuSPARSE/cuSOLVER
// headers, which a minimal CUDA toolkit (nvcc + cudart, as in CI) does not ship. A CPU-only torch (CI's
// compile check) also lacks the generated c10/cuda/impl/cuda_cmake_macros.h; it only defines the Windows
// DLL-export switch, so skipping it there is harmless (HIP builds skip it the same way).
#if !__has_include(<c10/cuda/impl/cuda_cmake_macros.h>) && !defined(C10_CUDA_NO_CMAKE_CONFIGURE_FILE)
#define C10_CUDA_NO_CMAKE_CONFIGURE_FILE
#endif
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <limits>
#include <tuple>

#include "op_checks.h"

namespace compress_ops {
namespace {

constexpr int kWarpSize = 32;
constexpr int kVecBytes = 16;              // one LDG.128 per pack on the vectorized path
constexpr int kCacheBytes = 64;            // row bytes each thread keeps in registers between the passes
constexpr int kMaxCachePacks = 16;         // bounds the register array on the scalar path
constexpr int kWarpKernelThreads = 256;    // warp-per-row kernel: 8 rows per block
constexpr int kMinBlockThreads = 64;
constexpr int kMaxBlockThreads = 1024;
constexpr int kMaxThreadsPerSm = 2048;
constexpr int kWavesPerLaunch = 8;         // grid cap (in full-occupancy waves); rows beyond it are grid-strided
constexpr float kQMax = 127.0f;

// Same layout as at::native::memory::aligned_vector: the alignment makes the copy one vector load/store.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T, int kVec>
constexpr int cache_packs() {
  return std::min(kMaxCachePacks, std::max(1, kCacheBytes / static_cast<int>(sizeof(Pack<T, kVec>))));
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// The max over the group that owns a row (a warp, or the whole block); every thread gets the result.
template <bool kWarpPerRow>
__device__ __forceinline__ float group_max(float v, float* partials) {
  v = warp_max(v);
  if constexpr (!kWarpPerRow) {
    const int lane = threadIdx.x % kWarpSize;
    const int warp = threadIdx.x / kWarpSize;
    const int num_warps = blockDim.x / kWarpSize;
    if (lane == 0) partials[warp] = v;
    __syncthreads();
    // Every warp reduces the partials itself, so no broadcast step is needed.
    v = warp_max(lane < num_warps ? partials[lane] : 0.0f);
    __syncthreads();  // `partials` is rewritten for the next row
  }
  return v;
}

// |x| max of a pack; `nonfinite` also catches NaN, which fmaxf would silently drop.
template <typename T, int N>
__device__ __forceinline__ void absmax_pack(const Pack<T, N>& p, float& amax, bool& nonfinite) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const float a = fabsf(to_float(p.v[i]));
    amax = fmaxf(amax, a);
    nonfinite |= !(a <= FLT_MAX);
  }
}

template <typename T, int N>
__device__ __forceinline__ Pack<int8_t, N> quantize_pack(const Pack<T, N>& p, float scale) {
  Pack<int8_t, N> out;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    // IEEE division and round-half-to-even, exactly as torch.round(x / scale) does.
    const int v = __float2int_rn(__fdiv_rn(to_float(p.v[i]), scale));
    out.v[i] = static_cast<int8_t>(max(-127, min(127, v)));
  }
  return out;
}

// kVec elements per pack (16 bytes on the vectorized path, 1 otherwise). A row of `cols` elements is
// `cols / kVec` packs: the launcher only picks kVec > 1 when cols % kVec == 0 and x is 16-byte aligned,
// so every row start is aligned too.
template <typename T, int kVec, bool kWarpPerRow>
__global__ void __launch_bounds__(kMaxBlockThreads)
quantize_per_token_kernel(const T* __restrict__ x, int8_t* __restrict__ q, float* __restrict__ scale,
                          unsigned long long* __restrict__ first_bad_row, int64_t rows, int64_t cols) {
  using InPack = Pack<T, kVec>;
  using OutPack = Pack<int8_t, kVec>;
  constexpr int kCache = cache_packs<T, kVec>();
  __shared__ float partials[kMaxBlockThreads / kWarpSize];

  int tid;
  int group_threads;
  int64_t row;
  int64_t row_step;
  if constexpr (kWarpPerRow) {
    const int warps_per_block = blockDim.x / kWarpSize;
    tid = threadIdx.x % kWarpSize;
    group_threads = kWarpSize;
    row = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / kWarpSize;
    row_step = static_cast<int64_t>(gridDim.x) * warps_per_block;
  } else {
    tid = threadIdx.x;
    group_threads = blockDim.x;
    row = blockIdx.x;
    row_step = gridDim.x;
  }
  const int64_t num_packs = cols / kVec;

  // `row` is uniform over the group, so the barriers inside group_max are reached by the whole block.
  for (; row < rows; row += row_step) {
    const InPack* xrow = reinterpret_cast<const InPack*>(x + row * cols);
    OutPack* qrow = reinterpret_cast<OutPack*>(q + row * cols);

    InPack cache[kCache];
    float amax = 0.0f;
    bool nonfinite = false;
#pragma unroll
    for (int c = 0; c < kCache; ++c) {
      const int64_t p = tid + static_cast<int64_t>(c) * group_threads;
      if (p < num_packs) {
        cache[c] = xrow[p];
        absmax_pack(cache[c], amax, nonfinite);
      }
    }
    // Rows longer than the register cache: the rest is read here and again in the second pass. The
    // explicit copy keeps it one vector load (passing xrow[p] by reference gets split into scalar loads).
    for (int64_t p = tid + static_cast<int64_t>(kCache) * group_threads; p < num_packs; p += group_threads) {
      const InPack v = xrow[p];
      absmax_pack(v, amax, nonfinite);
    }
    amax = group_max<kWarpPerRow>(amax, partials);
    if (nonfinite) atomicMin(first_bad_row, static_cast<unsigned long long>(row));

    // As the reference: a zero scale (an all-zero row, or an absmax so tiny that absmax / 127
    // underflows) becomes 1, so there is never a division by zero.
    float s = __fdiv_rn(amax, kQMax);
    if (s == 0.0f) s = 1.0f;
#pragma unroll
    for (int c = 0; c < kCache; ++c) {
      const int64_t p = tid + static_cast<int64_t>(c) * group_threads;
      if (p < num_packs) qrow[p] = quantize_pack(cache[c], s);
    }
    for (int64_t p = tid + static_cast<int64_t>(kCache) * group_threads; p < num_packs; p += group_threads) {
      const InPack v = xrow[p];
      qrow[p] = quantize_pack(v, s);
    }
    if (tid == 0) scale[row] = s;
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Cheap (the driver caches it); avoids ATen/cuda/CUDAContext.h, see the includes.
int current_device_attribute(cudaDeviceAttr attr) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, c10::cuda::current_device()));
  return value;
}

template <typename T, int kVec>
void launch_quantize(const T* x, int8_t* q, float* scale, unsigned long long* first_bad_row, int64_t rows,
                     int64_t cols, cudaStream_t stream) {
  constexpr int kCache = cache_packs<T, kVec>();
  const int64_t num_packs = cols / kVec;
  const int64_t sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  if (num_packs <= static_cast<int64_t>(kWarpSize) * kCache) {
    // Short rows: a block would leave most threads idle, so one warp per row, no barriers.
    constexpr int kRowsPerBlock = kWarpKernelThreads / kWarpSize;
    const int64_t cap = sms * (kMaxThreadsPerSm / kWarpKernelThreads) * kWavesPerLaunch;
    const int64_t blocks = std::min(ceil_div(rows, kRowsPerBlock), cap);
    quantize_per_token_kernel<T, kVec, true><<<static_cast<unsigned>(blocks), kWarpKernelThreads, 0, stream>>>(
        x, q, scale, first_bad_row, rows, cols);
  } else {
    // Long rows: one block per row, sized so the row fits in the block's register cache when it can.
    const int64_t wanted = ceil_div(ceil_div(num_packs, kCache), kWarpSize) * kWarpSize;
    const int threads = static_cast<int>(std::clamp<int64_t>(wanted, kMinBlockThreads, kMaxBlockThreads));
    const int64_t cap = sms * (kMaxThreadsPerSm / threads) * kWavesPerLaunch;
    const int64_t blocks = std::min(rows, cap);
    quantize_per_token_kernel<T, kVec, false><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        x, q, scale, first_bad_row, rows, cols);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void dispatch_alignment(const at::Tensor& x, at::Tensor& q, at::Tensor& scale, unsigned long long* first_bad_row,
                        cudaStream_t stream) {
  constexpr int kVec = kVecBytes / sizeof(T);
  const int64_t rows = x.size(0);
  const int64_t cols = x.size(1);
  const T* xp = reinterpret_cast<const T*>(x.const_data_ptr());
  int8_t* qp = q.data_ptr<int8_t>();
  // q is a fresh allocation (at least 16-byte aligned); x may be a view at any element offset.
  const bool vectorized = reinterpret_cast<uintptr_t>(xp) % kVecBytes == 0 &&
                          reinterpret_cast<uintptr_t>(qp) % kVecBytes == 0 && cols % kVec == 0;
  if (vectorized) {
    launch_quantize<T, kVec>(xp, qp, scale.data_ptr<float>(), first_bad_row, rows, cols, stream);
  } else {
    launch_quantize<T, 1>(xp, qp, scale.data_ptr<float>(), first_bad_row, rows, cols, stream);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> quantize_per_token_cuda(const at::Tensor& x) {
  check_quantize_args(x, /*allow_half=*/true);
  TORCH_CHECK(x.is_cuda(), "compress::quantize_per_token: x must be a CUDA tensor here, got one on ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = x.size(0);
  const int64_t cols = x.size(1);
  at::Tensor q = at::empty({rows, cols}, x.options().dtype(at::kChar));
  at::Tensor scale = at::empty({rows}, x.options().dtype(at::kFloat));
  if (rows == 0) return {q, scale};
  if (cols == 0) {
    scale.fill_(1.0f);  // absmax of an empty row is 0, so the scale is 1
    return {q, scale};
  }

  // The first row holding NaN/Inf, or no_bad_row. int64 storage, used as unsigned for atomicMin.
  constexpr int64_t no_bad_row = std::numeric_limits<int64_t>::max();
  at::Tensor bad_row = at::full({1}, no_bad_row, x.options().dtype(at::kLong));
  auto* bad_row_ptr = reinterpret_cast<unsigned long long*>(bad_row.data_ptr<int64_t>());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  switch (x.scalar_type()) {
    case at::kFloat:
      dispatch_alignment<float>(x, q, scale, bad_row_ptr, stream);
      break;
    case at::kHalf:
      dispatch_alignment<__half>(x, q, scale, bad_row_ptr, stream);
      break;
    case at::kBFloat16:
      dispatch_alignment<__nv_bfloat16>(x, q, scale, bad_row_ptr, stream);
      break;
    default:
      TORCH_CHECK(false, "compress::quantize_per_token: unsupported dtype ", x.scalar_type());
  }

  // NaN/Inf must raise, not quietly quantize to garbage. The price of the check is this device-to-host
  // copy and stream synchronization on every call (it also rules the op out of CUDA graph capture).
  int64_t host_bad_row = no_bad_row;
  c10::cuda::memcpy_and_sync(&host_bad_row, bad_row.const_data_ptr<int64_t>(), sizeof(int64_t),
                             cudaMemcpyDeviceToHost, stream);
  TORCH_CHECK(host_bad_row == no_bad_row, "compress::quantize_per_token: x contains NaN or Inf (row ", host_bad_row,
              "); per-token scales cannot represent it. Check the model's inputs or the layer before this one");
  return {q, scale};
}

}  // namespace compress_ops

TORCH_LIBRARY_IMPL(compress, CUDA, m) {
  m.impl("quantize_per_token", &compress_ops::quantize_per_token_cuda);
}
