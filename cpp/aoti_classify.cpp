// Classify an image with an AOTInductor package (.pt2): torch.export + AOTInductor compiled the
// model to native code in Python; here we only load the shared library inside and call it.
// A package is compiled for one device: --device cuda needs a package compiled for CUDA.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <iostream>
#include <memory>

#include "imagenet_topk.h"

int main(int argc, const char* argv[]) {
  const auto args = imagenet::parse_args(argc, argv, "aoti_classify", "model.pt2");
  if (!args) return 2;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  torch::Tensor input;
  std::vector<std::string> labels;
  try {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(args->model);
    input = imagenet::load_tensor(args->input).to(args->device);
    labels = imagenet::load_labels(args->labels);
  } catch (const std::exception& e) {
    std::cerr << "error loading the inputs: " << imagenet::first_line(e) << '\n';
    return 1;
  }

  c10::InferenceMode inference_mode;  // no autograd bookkeeping
  auto infer = [&] { return loader->run({input})[0]; };
  imagenet::print_top5(infer(), labels);
  if (args->runs > 0) {
    imagenet::print_latencies(args->runs, [&] {
      infer();
      imagenet::synchronize(args->device);
    });
  }
}
