// What classify and aoti_classify share: their command line, reading the inputs written by Python,
// and printing the top-5 classes (and, on request, per-run latencies) in one format the notebook and
// tests parse.
#pragma once

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace imagenet {

// <model> <input-tensor.pt> <labels.txt> [timed-runs] [--device cpu|cuda]
struct Args {
  std::string model, input, labels;
  int runs = 0;  // 0: classify once, no timing
  torch::Device device = torch::kCPU;
};

// The parsed command line, or nothing (after printing why) when it is wrong.
inline std::optional<Args> parse_args(int argc, const char* argv[], const std::string& program,
                                      const std::string& model_kind) {
  std::vector<std::string> positional;
  Args args;
  bool known_device = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      const std::string name = argv[++i];
      known_device = name == "cpu" || name == "cuda";
      if (name == "cuda") args.device = torch::Device(torch::kCUDA);
    } else {
      positional.push_back(arg);
    }
  }
  if (!known_device || (positional.size() != 3 && positional.size() != 4)) {
    std::cerr << "usage: " << program << " <" << model_kind
              << "> <input-tensor.pt> <labels.txt> [timed-runs] [--device cpu|cuda]\n";
    return std::nullopt;
  }
  args.model = positional[0];
  args.input = positional[1];
  args.labels = positional[2];
  if (positional.size() == 4) args.runs = std::atoi(positional[3].c_str());
  if (args.device.is_cuda() && !torch::cuda::is_available()) {
    std::cerr << "--device cuda: CUDA is not available (no GPU, or libtorch was linked without CUDA)\n";
    return std::nullopt;
  }
  return args;
}

// Wait for the GPU's queued work, so a timing covers the computation and not just its launch.
inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// The first line of an exception's message (c10::Error appends a C++ backtrace to the rest).
inline std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

// A tensor written by Python's torch.save(tensor, path): pickle_load reads that format.
inline torch::Tensor load_tensor(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return torch::jit::pickle_load(bytes).toTensor();
}

// One "wnid name" pair per line, in class-index order.
inline std::vector<std::string> load_labels(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> labels;
  for (std::string line; std::getline(file, line);) labels.push_back(line);
  return labels;
}

// "rank class-index wnid name probability", best first, like Classifier.topk in Python.
inline void print_top5(const torch::Tensor& logits, const std::vector<std::string>& labels) {
  auto [probs, ids] = logits.to(torch::kCPU).softmax(/*dim=*/1).topk(5, /*dim=*/1);
  for (int64_t i = 0; i < 5; ++i) {
    const int64_t id = ids[0][i].item<int64_t>();
    const std::string label = id < static_cast<int64_t>(labels.size()) ? labels[id] : "?";
    std::cout << i + 1 << ' ' << id << ' ' << label << ' ' << std::fixed << std::setprecision(6)
              << probs[0][i].item<float>() << '\n';
  }
}

// Warm up, then time `runs` calls of `infer` and print them on one line (milliseconds).
inline void print_latencies(int runs, const std::function<void()>& infer) {
  for (int i = 0; i < 5; ++i) infer();
  std::cout << "threads " << at::get_num_threads() << '\n' << "latency_ms";
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    infer();
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << ' ' << elapsed.count();
  }
  std::cout << '\n';
}

}  // namespace imagenet
