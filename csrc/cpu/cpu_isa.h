// Which CPU kernels run: chosen at run time from what this CPU supports, so one build serves
// every x86-64 machine. COMPRESS_OPS_CPU_ISA=portable|avx2|avx512vnni forces one (tests use it to
// cover each path the CPU can run); asking for one the CPU lacks is an error, not a crash.
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace compress_ops {

enum class CpuIsa { kPortable, kAvx2, kAvx512Vnni };

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

inline CpuIsa select_cpu_isa(const char* op) {
  const char* forced = std::getenv("COMPRESS_OPS_CPU_ISA");
  if (forced == nullptr || *forced == '\0' || std::strcmp(forced, "auto") == 0) {
    if (cpu_has_avx512_vnni()) return CpuIsa::kAvx512Vnni;
    if (cpu_has_avx2()) return CpuIsa::kAvx2;
    return CpuIsa::kPortable;
  }
  const std::string name(forced);
  if (name == "portable") return CpuIsa::kPortable;
  if (name == "avx2") {
    TORCH_CHECK(cpu_has_avx2(), op, ": COMPRESS_OPS_CPU_ISA=avx2 but this CPU has no AVX2; unset it");
    return CpuIsa::kAvx2;
  }
  if (name == "avx512vnni") {
    TORCH_CHECK(cpu_has_avx512_vnni(), op,
                ": COMPRESS_OPS_CPU_ISA=avx512vnni but this CPU has no AVX-512 VNNI; unset it");
    return CpuIsa::kAvx512Vnni;
  }
  TORCH_CHECK(false, op, ": COMPRESS_OPS_CPU_ISA=", name, " is unknown; use auto, portable, avx2 or avx512vnni");
}

}  // namespace compress_ops
