// Classify an image with an AOTInductor package (.pt2): torch.export + AOTInductor compiled the
// model to native code in Python; here we only load the shared library inside and call it.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "imagenet_topk.h"

int main(int argc, const char* argv[]) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: aoti_classify <model.pt2> <input-tensor.pt> <labels.txt> [timed-runs]\n";
    return 2;
  }
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  torch::Tensor input;
  std::vector<std::string> labels;
  try {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(argv[1]);
    input = imagenet::load_tensor(argv[2]);
    labels = imagenet::load_labels(argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "error loading the inputs: " << imagenet::first_line(e) << '\n';
    return 1;
  }

  c10::InferenceMode inference_mode;  // no autograd bookkeeping
  auto infer = [&] { return loader->run({input})[0]; };
  imagenet::print_top5(infer(), labels);
  if (argc == 5) imagenet::print_latencies(std::atoi(argv[4]), [&] { infer(); });
}
