// The tutorial's example-app: load a TorchScript module saved from Python, then run it on
// torch::ones({1, 3, 224, 224}) and print the first five outputs.
#include <torch/script.h>  // One-stop header.

#include <iostream>
#include <memory>

int main(int argc, const char* argv[]) {
  if (argc != 2) {
    std::cerr << "usage: example-app <path-to-exported-script-module>\n";
    return -1;
  }

  torch::jit::script::Module module;
  try {
    // Deserialize the ScriptModule from a file using torch::jit::load().
    module = torch::jit::load(argv[1]);
  } catch (const c10::Error& e) {
    std::cerr << "error loading the model\n";
    return -1;
  }
  std::cout << "ok\n";

  // Create a vector of inputs.
  std::vector<torch::jit::IValue> inputs;
  inputs.push_back(torch::ones({1, 3, 224, 224}));

  // Execute the model and turn its output into a tensor. Unlike the tutorial we catch a failure
  // here too (a module that expects another input), so the program ends with a message and an
  // exit code instead of std::terminate().
  at::Tensor output;
  try {
    output = module.forward(inputs).toTensor();
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
