// Classify an image with a TorchScript classifier: the tutorial's example-app, made useful.
// The preprocessed image comes from Python (torch.save), so both sides see the same input.
// --device cuda is the tutorial's GPU tip: move the module and its inputs to the GPU.
#include <torch/script.h>

#include <iostream>

#include "imagenet_topk.h"

int main(int argc, const char* argv[]) {
  const auto args = imagenet::parse_args(argc, argv, "classify", "model.pt");
  if (!args) return 2;
  torch::jit::script::Module module;
  torch::Tensor input;
  std::vector<std::string> labels;
  try {
    module = torch::jit::load(args->model);
    module.eval();
    module.to(args->device);  // on the GPU: module.to(at::kCUDA), as the tutorial says
    input = imagenet::load_tensor(args->input).to(args->device);
    labels = imagenet::load_labels(args->labels);
  } catch (const std::exception& e) {
    std::cerr << "error loading the inputs: " << imagenet::first_line(e) << '\n';
    return 1;
  }

  c10::InferenceMode inference_mode;  // no autograd bookkeeping
  // forward() takes and returns IValues (a tagged union of tensors, lists, tuples...): toTensor()
  // unwraps the single tensor this model returns.
  auto infer = [&] { return module.forward({input}).toTensor(); };
  imagenet::print_top5(infer(), labels);
  if (args->runs > 0) {
    imagenet::print_latencies(args->runs, [&] {
      infer();
      imagenet::synchronize(args->device);
    });
  }
}
