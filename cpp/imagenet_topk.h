// What classify and aoti_classify share: reading the inputs written by Python, and printing the
// top-5 classes (and, on request, per-run latencies) in one format the notebook and tests parse.
#pragma once

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace imagenet {

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
  auto [probs, ids] = logits.softmax(/*dim=*/1).topk(5, /*dim=*/1);
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
