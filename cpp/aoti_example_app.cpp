// The tutorial's example-app, today's way: load an AOTInductor package (.pt2) written by
// torch._inductor.aoti_compile_and_package instead of a TorchScript file, run it on
// torch::ones({1, 3, 224, 224}) and print the first five outputs.
#include <torch/types.h>  // torch::ones, and printing a tensor
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <iostream>
#include <memory>

int main(int argc, const char* argv[]) {
  if (argc != 2) {
    std::cerr << "usage: aoti_example_app <path-to-package.pt2>\n";
    return -1;
  }

  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  try {
    // Unpack the package and load the compiled model library inside it.
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "error loading the model\n";
    return -1;
  }
  std::cout << "ok\n";

  // Plain tensors in and out: no IValue, no interpreter.
  std::vector<at::Tensor> inputs{torch::ones({1, 3, 224, 224})};
  at::Tensor output;
  try {
    output = loader->run(inputs)[0];
  } catch (const c10::Error& e) {
    // Since torch 2.15 what() ends with a C++ backtrace (addresses); the message is what a user needs.
    std::cerr << "error running the model:\n" << e.what_without_backtrace() << '\n';
    return -1;
  } catch (const std::exception& e) {
    std::cerr << "error running the model:\n" << e.what() << '\n';
    return -1;
  }
  std::cout << output.slice(/*dim=*/1, /*start=*/0, /*end=*/5) << '\n';
}
