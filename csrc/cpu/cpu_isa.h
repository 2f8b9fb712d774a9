// Which CPU kernels run: chosen at run time from what this CPU (and its OS) supports, so one
// build serves every x86-64 machine. COMPRESS_OPS_CPU_ISA=portable|avx2|avx_vnni|avx512_vnni|amx
// forces one (tests and benchmarks use it to cover each path the CPU can run); asking for one the
// CPU lacks is an error, not a crash. The names are the ones every report's `isa` field uses.
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "cpu/int8_gemm_packed.h"

namespace compress_ops {

enum class CpuIsa { kPortable, kAvx2, kAvxVnni, kAvx512Vnni, kAmx };

inline const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAmx: return "amx";
    case CpuIsa::kAvx512Vnni: return "avx512_vnni";
    case CpuIsa::kAvxVnni: return "avx_vnni";
    case CpuIsa::kAvx2: return "avx2";
    default: return "portable";
  }
}

inline bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

inline bool cpu_has_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

inline bool cpu_has_avx_vnni() {  // CPUID.(7,1):EAX[4]; the OS's AVX state is implied by AVX2 working
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return cpu_has_avx2() && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax >> 4 & 1);
#else
  return false;
#endif
}

inline bool cpu_has_amx_int8() {  // CPUID.(7,0):EDX[24] AMX-TILE, [25] AMX-INT8, and the OS grants the tile state
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx >> 24 & 1) || !(edx >> 25 & 1)) return false;
  return cpu_has_avx512_vnni() && amx_request_permission();
#else
  return false;
#endif
}

inline CpuIsa select_cpu_isa(const char* op) {
  const char* forced = std::getenv("COMPRESS_OPS_CPU_ISA");
  if (forced == nullptr || *forced == '\0' || std::strcmp(forced, "auto") == 0) {
    if (cpu_has_amx_int8()) return CpuIsa::kAmx;
    if (cpu_has_avx512_vnni()) return CpuIsa::kAvx512Vnni;
    if (cpu_has_avx_vnni()) return CpuIsa::kAvxVnni;
    if (cpu_has_avx2()) return CpuIsa::kAvx2;
    return CpuIsa::kPortable;
  }
  const std::string name(forced);
  const auto need = [&](bool has, const char* what) {
    TORCH_CHECK(has, op, ": COMPRESS_OPS_CPU_ISA=", name, " but this CPU has no ", what, "; unset it");
  };
  if (name == "portable") return CpuIsa::kPortable;
  if (name == "avx2") return need(cpu_has_avx2(), "AVX2"), CpuIsa::kAvx2;
  if (name == "avx_vnni" || name == "avxvnni") return need(cpu_has_avx_vnni(), "AVX-VNNI"), CpuIsa::kAvxVnni;
  if (name == "avx512_vnni" || name == "avx512vnni") return need(cpu_has_avx512_vnni(), "AVX-512 VNNI"), CpuIsa::kAvx512Vnni;
  if (name == "amx") return need(cpu_has_amx_int8(), "AMX-INT8 (or the OS did not grant it)"), CpuIsa::kAmx;
  TORCH_CHECK(false, op, ": COMPRESS_OPS_CPU_ISA=", name,
              " is unknown; use auto, portable, avx2, avx_vnni, avx512_vnni or amx");
}

// The unpacked int8_linear has kernels for portable, AVX2 and AVX-512 VNNI only.
inline CpuIsa rows_kernel_isa(CpuIsa isa) {
  if (isa == CpuIsa::kAmx) return CpuIsa::kAvx512Vnni;
  if (isa == CpuIsa::kAvxVnni) return CpuIsa::kAvx2;
  return isa;
}

}  // namespace compress_ops
