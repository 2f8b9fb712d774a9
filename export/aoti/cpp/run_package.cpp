// Runs an AOTInductor package (compress MODEL --int8 --backend torch --target aoti) from C++, with
// no Python: the torch C++ runtime, the package, and compress's kernels library (the package calls
// torch.ops.compress.* by name, so the library that registers them is loaded first).
//
//   run_package PACKAGE.pt2 LIBCOMPRESS_OPS.so OUT_PREFIX INPUT...
//
// Each INPUT is FILE:DTYPE:DIMS (raw little-endian values; DTYPE int64, int32 or float32; DIMS like
// 2x16). Each output i is written to OUT_PREFIX<i>.bin as float32, and its shape printed on stdout.
// Build: python -m export.aoti.cpp_loader DIR (prints the binary's path).
#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

namespace {

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "float32") return at::kFloat;
  throw std::runtime_error("unknown dtype " + name + " (use int64, int32 or float32)");
}

at::Tensor read_input(const std::string& spec) {
  const auto first = spec.find(':'), second = spec.find(':', first + 1);
  if (first == std::string::npos || second == std::string::npos)
    throw std::runtime_error("input " + spec + " is not FILE:DTYPE:DIMS");
  std::vector<int64_t> sizes;
  std::stringstream dims(spec.substr(second + 1));
  for (std::string d; std::getline(dims, d, 'x');) sizes.push_back(std::stoll(d));
  at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(parse_dtype(spec.substr(first + 1, second - first - 1))));
  std::ifstream in(spec.substr(0, first), std::ios::binary);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!in) throw std::runtime_error("cannot read " + std::to_string(t.nbytes()) + " bytes from " + spec.substr(0, first));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: run_package PACKAGE.pt2 LIBCOMPRESS_OPS.so OUT_PREFIX FILE:DTYPE:DIMS...\n";
    return 2;
  }
  // RTLD_GLOBAL: the ops register themselves with the dispatcher the package calls into.
  if (dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::cerr << "error: cannot load the kernels library: " << dlerror() << "\n";
    return 2;
  }
  try {
    std::vector<at::Tensor> inputs;
    for (int i = 4; i < argc; ++i) inputs.push_back(read_input(argv[i]));
    torch::inductor::AOTIModelPackageLoader loader(argv[1]);
    c10::InferenceMode guard;
    const std::vector<at::Tensor> outputs = loader.run(inputs);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const at::Tensor out = outputs[i].to(at::kCPU).to(at::kFloat).contiguous();
      std::ofstream file(std::string(argv[3]) + std::to_string(i) + ".bin", std::ios::binary);
      file.write(static_cast<const char*>(out.data_ptr()), static_cast<std::streamsize>(out.nbytes()));
      std::cout << "output " << i << " " << out.sizes() << "\n";
    }
  } catch (const std::exception& exc) {
    std::cerr << "error: " << std::string(exc.what()).substr(0, 500) << "\n";
    return 1;
  }
  return 0;
}
