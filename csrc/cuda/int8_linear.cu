// CUDA implementation of compress::int8_linear (schema in ../ops.cpp):
//   y = act((float(q @ w_q.T) * x_scale[:, None]) * w_scale[None, :] + bias), cast to out_dtype.
//
// Main path: an INT8 tensor-core GEMM (mma.sync m16n8k32 s8*s8+s32, sm_80 and sm_90a alike) in the "TN"
// layout both operands already have: q [M, K] and w_q [N, K] are K-contiguous, which is exactly the
// row.col operand form, so no transpose is needed anywhere.
//   * block tile 128x128x64 (int8: 64 bytes of K per row per stage), 8 warps as 2 (M) x 4 (N),
//     each warp owning a 64x32 tile = 4x4 mma tiles, 64 int32 accumulators per thread;
//   * a 4-stage cp.async pipeline (16-byte cp.async.cg, zero-fill for rows/columns past M, N, K);
//   * ldmatrix.x4 from an XOR-swizzled shared-memory layout (conflict-free, no padding);
//   * the epilogue (scales, bias, exact-erf GELU, dtype conversion) from registers, bounds-checked.
// It needs K % 16 == 0 (whole 16-byte chunks) and 16-byte aligned q / w_q. Anything else (a view at an
// odd offset, K = 7, ...) runs a simple one-output-per-thread kernel (__dp4a when K % 4 == 0 and the rows
// are 4-byte aligned) with the same epilogue, so the two paths agree bit for bit.

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
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include "op_checks.h"

namespace compress_ops {
namespace {

// ---- tile shape -------------------------------------------------------------------------------------
constexpr int kBlockM = 128;
constexpr int kBlockN = 128;
constexpr int kBlockK = 64;  // int8 elements == bytes
constexpr int kStages = 4;
constexpr int kWarpsM = 2;
constexpr int kWarpsN = 4;
constexpr int kThreads = kWarpsM * kWarpsN * 32;
constexpr int kWarpTileM = kBlockM / kWarpsM;  // 64
constexpr int kWarpTileN = kBlockN / kWarpsN;  // 32
constexpr int kMmaM = 16;
constexpr int kMmaN = 8;
constexpr int kMmaK = 32;
constexpr int kMmaTilesM = kWarpTileM / kMmaM;  // 4
constexpr int kMmaTilesN = kWarpTileN / kMmaN;  // 4
constexpr int kKSteps = kBlockK / kMmaK;        // 2
constexpr int kGroupM = 8;                      // tile rasterization: 8 M-tiles sweep N together (L2 reuse)

// ---- shared-memory layout ---------------------------------------------------------------------------
constexpr int kChunkBytes = 16;                            // one cp.async / one ldmatrix row
constexpr int kChunksPerRow = kBlockK / kChunkBytes;       // 4
constexpr int kChunksPerMmaK = kMmaK / kChunkBytes;        // 2
constexpr int kTileABytes = kBlockM * kBlockK;
constexpr int kTileBBytes = kBlockN * kBlockK;
constexpr int kStageBytes = kTileABytes + kTileBBytes;
constexpr int kSmemBytes = kStages * kStageBytes;          // 64 KiB: needs the opt-in dynamic limit
constexpr int kLoadsA = kBlockM * kChunksPerRow / kThreads;  // 16-byte chunks per thread per stage
constexpr int kLoadsB = kBlockN * kChunksPerRow / kThreads;

static_assert(kBlockM * kChunksPerRow % kThreads == 0 && kBlockN * kChunksPerRow % kThreads == 0,
              "every thread copies the same number of chunks");
static_assert(kChunksPerRow == 4, "the swizzle below permutes exactly 4 chunks per row");
static_assert(kMmaTilesN % 2 == 0, "B fragments are loaded two n-tiles per ldmatrix.x4");

// The simple kernel.
constexpr int kSimpleThreads = 256;
constexpr int kSimpleBlocksPerSm = 8;
constexpr int kSimpleWaves = 4;  // grid cap; the kernel grid-strides over the rest

constexpr float kSqrtHalf = 0.70710678118654752440f;

// A tile row is 64 bytes (4 chunks), so two rows share a 128-byte bank line. ldmatrix reads one chunk
// column of 8 consecutive rows; XOR-ing the chunk index with (row / 2) % 4 puts those 8 reads on 8
// distinct 16-byte bank groups (conflict-free) while cp.async still writes whole chunks.
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * kBlockK + ((chunk ^ ((row >> 1) & 3)) * kChunkBytes);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; src_bytes = 0 reads nothing and zero-fills (out-of-range rows/K).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? kChunkBytes : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a (16x32 s8, row) * b (32x8 s8, col), int32 accumulate (wraps like the int32 reference).
__device__ __forceinline__ void mma_s8(int32_t (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// ---- the fused epilogue, shared by both kernels --------------------------------------------------------
// Rounded exactly like the reference, left to right: (float(acc) * xs) * ws + bias. The _rn intrinsics
// stop nvcc from contracting into an FMA, which would round differently; in the GELU they also keep
// the two kernels bit-identical to each other (erff itself may differ from the CPU's erf by an ulp).
__device__ __forceinline__ float epilogue(int32_t acc, float xs, float ws, float bias, bool has_bias, bool gelu) {
  float y = __fmul_rn(__fmul_rn(__int2float_rn(acc), xs), ws);
  if (has_bias) y = __fadd_rn(y, bias);
  if (gelu) y = __fmul_rn(__fmul_rn(0.5f, y), __fadd_rn(1.0f, erff(__fmul_rn(y, kSqrtHalf))));
  return y;
}

__device__ __forceinline__ void store_one(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_one(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store_one(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// p must be aligned to two elements.
__device__ __forceinline__ void store_two(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}
__device__ __forceinline__ void store_two(__half* p, float a, float b) {
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
}
__device__ __forceinline__ void store_two(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}

// Copies rows [row0, row0 + rows_in_tile) x bytes [k0, k0 + kBlockK) of a K-contiguous int8 matrix into a
// swizzled shared tile. K % 16 == 0, so a chunk is either wholly inside [0, K) or wholly outside.
template <int kLoads>
__device__ __forceinline__ void load_tile_async(uint32_t tile, const int8_t* __restrict__ g, int rows, int row0,
                                                int K, int k0) {
#pragma unroll
  for (int i = 0; i < kLoads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow;
    const int gr = row0 + r;
    const int gk = k0 + c * kChunkBytes;
    const bool valid = gr < rows && gk < K;
    // An out-of-range chunk still needs a mapped address; nothing is read from it.
    const int8_t* src = valid ? g + static_cast<int64_t>(gr) * K + gk : g;
    cp_async_16(tile + swizzle(r, c), src, valid);
  }
}

template <typename OutT>
__global__ void __launch_bounds__(kThreads, 2)
int8_linear_mma_kernel(const int8_t* __restrict__ a, const float* __restrict__ x_scale,
                       const int8_t* __restrict__ b, const float* __restrict__ w_scale,
                       const float* __restrict__ bias, OutT* __restrict__ out, int M, int N, int K, bool gelu) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) int8_t smem[];

  // Grouped rasterization: consecutive blocks walk kGroupM M-tiles down before moving along N, so a
  // wave of blocks shares both its A rows and its B columns in L2.
  const int tiles_m = (M + kBlockM - 1) / kBlockM;
  const int tiles_n = (N + kBlockN - 1) / kBlockN;
  const int blocks_per_group = kGroupM * tiles_n;
  const int group = static_cast<int>(blockIdx.x) / blocks_per_group;
  const int first_m = group * kGroupM;
  const int group_m = min(tiles_m - first_m, kGroupM);
  const int in_group = static_cast<int>(blockIdx.x) % blocks_per_group;
  const int m0 = (first_m + in_group % group_m) * kBlockM;
  const int n0 = (in_group / group_m) * kBlockN;

  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int warp_m0 = (warp / kWarpsN) * kWarpTileM;
  const int warp_n0 = (warp % kWarpsN) * kWarpTileN;
  const uint32_t smem_base = smem_addr(smem);
  const int k_tiles = (K + kBlockK - 1) / kBlockK;

  // Prologue: stages 0 .. kStages-2 in flight. Always commit, even an empty group, so the
  // wait_group count below stays uniform at the tail.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) {
      const uint32_t stage = smem_base + s * kStageBytes;
      load_tile_async<kLoadsA>(stage, a, M, m0, K, s * kBlockK);
      load_tile_async<kLoadsB>(stage + kTileABytes, b, N, n0, K, s * kBlockK);
    }
    cp_async_commit();
  }

  int32_t acc[kMmaTilesM][kMmaTilesN][4];
#pragma unroll
  for (int i = 0; i < kMmaTilesM; ++i)
#pragma unroll
    for (int j = 0; j < kMmaTilesN; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

  // ldmatrix.x4 lane addressing. A (16x32 bytes): matrices 0..3 = rows 0-7/8-15 x bytes 0-15, then
  // rows 0-7/8-15 x bytes 16-31, i.e. exactly the a0..a3 registers of the m16n8k32 A fragment.
  const int a_row = lane % 16;
  const int a_chunk = lane / 16;
  // B (two n8 tiles x 32 bytes): matrices = n 0-7 x bytes 0-15, n 0-7 x bytes 16-31, n 8-15 x ..., so
  // registers {0,1} are the b0,b1 of the first n-tile and {2,3} those of the second.
  const int b_row = (lane / 16) * 8 + lane % 8;
  const int b_chunk = (lane / 8) % 2;

  for (int kt = 0; kt < k_tiles; ++kt) {
    // Tile kt has landed (at most kStages-2 newer groups pending), and the barrier makes every thread's
    // copies visible and guarantees that all warps are done with the stage about to be overwritten.
    cp_async_wait<kStages - 2>();
    __syncthreads();

    const int next = kt + kStages - 1;
    if (next < k_tiles) {
      const uint32_t stage = smem_base + (next % kStages) * kStageBytes;
      load_tile_async<kLoadsA>(stage, a, M, m0, K, next * kBlockK);
      load_tile_async<kLoadsB>(stage + kTileABytes, b, N, n0, K, next * kBlockK);
    }
    cp_async_commit();

    const uint32_t tile_a = smem_base + (kt % kStages) * kStageBytes;
    const uint32_t tile_b = tile_a + kTileABytes;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      uint32_t frag_a[kMmaTilesM][4];
      uint32_t frag_b[kMmaTilesN][2];
#pragma unroll
      for (int i = 0; i < kMmaTilesM; ++i) {
        ldmatrix_x4(frag_a[i], tile_a + swizzle(warp_m0 + i * kMmaM + a_row, ks * kChunksPerMmaK + a_chunk));
      }
#pragma unroll
      for (int j = 0; j < kMmaTilesN; j += 2) {
        uint32_t r[4];
        ldmatrix_x4(r, tile_b + swizzle(warp_n0 + j * kMmaN + b_row, ks * kChunksPerMmaK + b_chunk));
        frag_b[j][0] = r[0];
        frag_b[j][1] = r[1];
        frag_b[j + 1][0] = r[2];
        frag_b[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < kMmaTilesM; ++i)
#pragma unroll
        for (int j = 0; j < kMmaTilesN; ++j) mma_s8(acc[i][j], frag_a[i], frag_b[j]);
    }
  }
  cp_async_wait<0>();  // only empty groups remain; drain them before exit for hygiene

  // Epilogue. Accumulator fragment of an m16n8 tile: lane holds (row g, cols 2t, 2t+1) in e = 0, 1
  // and (row g + 8, same cols) in e = 2, 3, with g = lane / 4, t = lane % 4.
  const int g = lane / 4;
  const int t = lane % 4;
  const bool has_bias = bias != nullptr;
  const bool pairs_aligned = N % 2 == 0;  // row * N + col is even, so a 2-element store is aligned
  float ws[kMmaTilesN][2];
  float bs[kMmaTilesN][2];
#pragma unroll
  for (int j = 0; j < kMmaTilesN; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = n0 + warp_n0 + j * kMmaN + 2 * t + e;
      ws[j][e] = col < N ? w_scale[col] : 0.0f;
      bs[j][e] = has_bias && col < N ? bias[col] : 0.0f;
    }
  }
#pragma unroll
  for (int i = 0; i < kMmaTilesM; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = m0 + warp_m0 + i * kMmaM + g + h * 8;
      if (row >= M) continue;
      const float xs = x_scale[row];
      OutT* out_row = out + static_cast<int64_t>(row) * N;
#pragma unroll
      for (int j = 0; j < kMmaTilesN; ++j) {
        const int col = n0 + warp_n0 + j * kMmaN + 2 * t;
        if (col >= N) continue;
        const float v0 = epilogue(acc[i][j][2 * h], xs, ws[j][0], bs[j][0], has_bias, gelu);
        if (col + 1 < N) {
          const float v1 = epilogue(acc[i][j][2 * h + 1], xs, ws[j][1], bs[j][1], has_bias, gelu);
          if (pairs_aligned) {
            store_two(out_row + col, v0, v1);
          } else {
            store_one(out_row + col, v0);
            store_one(out_row + col + 1, v1);
          }
        } else {
          store_one(out_row + col, v0);
        }
      }
    }
  }
#else
  __trap();  // never launched: the host only picks this kernel on sm_80+
#endif
}

// One output per thread: exact int32 dot product, then the same epilogue. For shapes or views the
// tensor-core kernel cannot take; K == 0 also lands here (acc = 0: the output is act(bias) or act(0)).
template <typename OutT>
__global__ void __launch_bounds__(kSimpleThreads)
int8_linear_simple_kernel(const int8_t* __restrict__ a, const float* __restrict__ x_scale,
                          const int8_t* __restrict__ b, const float* __restrict__ w_scale,
                          const float* __restrict__ bias, OutT* __restrict__ out, int64_t M, int64_t N, int64_t K,
                          bool gelu, bool use_dp4a) {
  const int64_t total = M * N;
  const bool has_bias = bias != nullptr;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = idx / N;
    const int64_t col = idx - row * N;
    const int8_t* a_row = a + row * K;
    const int8_t* b_row = b + col * K;
    // Unsigned sum: int32 wrap-around like the reference and the mma path, without signed-overflow UB.
    uint32_t acc = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    if (use_dp4a) {
      const int* a4 = reinterpret_cast<const int*>(a_row);
      const int* b4 = reinterpret_cast<const int*>(b_row);
      int acc4 = 0;
      for (int64_t k = 0; k < K / 4; ++k) acc4 = __dp4a(a4[k], b4[k], acc4);
      acc = static_cast<uint32_t>(acc4);
    } else
#endif
    {
      for (int64_t k = 0; k < K; ++k) {
        acc += static_cast<uint32_t>(static_cast<int32_t>(a_row[k]) * static_cast<int32_t>(b_row[k]));
      }
    }
    const float y = epilogue(static_cast<int32_t>(acc), x_scale[row], w_scale[col], has_bias ? bias[col] : 0.0f,
                             has_bias, gelu);
    store_one(out + idx, y);
  }
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Cheap (the driver caches it); avoids ATen/cuda/CUDAContext.h, see the includes.
int current_device_attribute(cudaDeviceAttr attr) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, c10::cuda::current_device()));
  return value;
}

template <typename OutT>
void launch_int8_linear(const at::Tensor& q, const at::Tensor& x_scale, const at::Tensor& w_q,
                        const at::Tensor& w_scale, const float* bias, at::Tensor& out, const LinearShape& s) {
  const int8_t* a = q.const_data_ptr<int8_t>();
  const int8_t* b = w_q.const_data_ptr<int8_t>();
  const float* xs = x_scale.const_data_ptr<float>();
  const float* ws = w_scale.const_data_ptr<float>();
  OutT* o = reinterpret_cast<OutT*>(out.data_ptr());
  const bool gelu = s.activation == Activation::kGelu;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  const int64_t tiles = ((s.m + kBlockM - 1) / kBlockM) * ((s.n + kBlockN - 1) / kBlockN);
  // The tensor-core kernel indexes rows, columns and tiles with int (tile corners included).
  const bool fits_int = s.m <= INT_MAX - kBlockM && s.n <= INT_MAX - kBlockN && tiles <= INT_MAX;
  const bool tensor_cores = current_device_attribute(cudaDevAttrComputeCapabilityMajor) >= 8 && s.k > 0 &&
                            s.k % kChunkBytes == 0 && aligned(a, kChunkBytes) && aligned(b, kChunkBytes) && fits_int;
  if (tensor_cores) {
    const auto kernel = int8_linear_mma_kernel<OutT>;
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    kernel<<<static_cast<unsigned>(tiles), kThreads, kSmemBytes, stream>>>(
        a, xs, b, ws, bias, o, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), gelu);
  } else {
    const bool use_dp4a = s.k % 4 == 0 && aligned(a, 4) && aligned(b, 4);
    const int64_t sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
    const int64_t wanted = (s.m * s.n + kSimpleThreads - 1) / kSimpleThreads;
    const int64_t blocks = std::min<int64_t>(wanted, sms * kSimpleBlocksPerSm * kSimpleWaves);
    int8_linear_simple_kernel<OutT><<<static_cast<unsigned>(blocks), kSimpleThreads, 0, stream>>>(
        a, xs, b, ws, bias, o, s.m, s.n, s.k, gelu, use_dp4a);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor int8_linear_cuda(const at::Tensor& q, const at::Tensor& x_scale, const at::Tensor& w_q,
                            const at::Tensor& w_scale, const c10::optional<at::Tensor>& bias,
                            std::string_view activation, c10::optional<at::ScalarType> out_dtype) {
  const LinearShape s = check_int8_linear_args(q, x_scale, w_q, w_scale, bias, std::string(activation), out_dtype,
                                               /*allow_half_out=*/true);
  TORCH_CHECK(q.is_cuda(), "compress::int8_linear: q must be a CUDA tensor here, got one on ", q.device());
  const c10::cuda::CUDAGuard guard(q.device());
  at::Tensor out = at::empty({s.m, s.n}, q.options().dtype(s.out_dtype));
  if (s.m == 0 || s.n == 0) return out;

  const float* bias_ptr = bias.has_value() && bias->defined() ? bias->const_data_ptr<float>() : nullptr;
  switch (s.out_dtype) {
    case at::kFloat:
      launch_int8_linear<float>(q, x_scale, w_q, w_scale, bias_ptr, out, s);
      break;
    case at::kHalf:
      launch_int8_linear<__half>(q, x_scale, w_q, w_scale, bias_ptr, out, s);
      break;
    case at::kBFloat16:
      launch_int8_linear<__nv_bfloat16>(q, x_scale, w_q, w_scale, bias_ptr, out, s);
      break;
    default:
      TORCH_CHECK(false, "compress::int8_linear: unsupported out_dtype ", s.out_dtype);
  }
  return out;
}

}  // namespace compress_ops

TORCH_LIBRARY_IMPL(compress, CUDA, m) {
  m.impl("int8_linear", &compress_ops::int8_linear_cuda);
}
