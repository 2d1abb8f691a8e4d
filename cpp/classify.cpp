// Classify an image with a TorchScript classifier: the tutorial's example-app, made useful.
// The preprocessed image comes from Python (torch.save), so both sides see the same input.
#include <torch/script.h>

#include <cstdlib>
#include <iostream>

#include "imagenet_topk.h"

int main(int argc, const char* argv[]) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: classify <model.pt> <input-tensor.pt> <labels.txt> [timed-runs]\n";
    return 2;
  }
  torch::jit::script::Module module;
  torch::Tensor input;
  std::vector<std::string> labels;
  try {
    module = torch::jit::load(argv[1]);
    module.eval();
    input = imagenet::load_tensor(argv[2]);
    labels = imagenet::load_labels(argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "error loading the inputs: " << imagenet::first_line(e) << '\n';
    return 1;
  }

  c10::InferenceMode inference_mode;  // no autograd bookkeeping
  auto infer = [&] { return module.forward({input}).toTensor(); };
  imagenet::print_top5(infer(), labels);
  if (argc == 5) imagenet::print_latencies(std::atoi(argv[4]), [&] { infer(); });
}
