#pragma once
// Shared setup of the golden tests: the tiny-a checkpoint, its reference outputs, and a
// comparison that reports where two arrays differ.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "comms/expert_exchange.h"
#include "launch/npy_file.h"
#include "stages/transformer.h"

namespace flashline::testing {

inline const std::string kModelDir = std::string(FLASHLINE_TEST_DATA) + "/models/tiny-a";
inline const std::string kGoldenDir = std::string(FLASHLINE_TEST_DATA) + "/goldens/tiny-a";

inline NpyArray golden(const std::string& name) { return read_npy(kGoldenDir + "/" + name); }

struct ModelUnderTest {
  Checkpoint ck;
  LoopbackExpertExchange exchange;
  Transformer tf;
  explicit ModelUnderTest(Numerics num)
      : ck(Checkpoint::open(kModelDir)), tf(ck, num, exchange, ExpertRoutes::single(ck.config().n_experts)) {}

  // Prefill of one request; returns the final hc stream.
  std::vector<float> prefill(const std::vector<int32_t>& ids, RequestState& st, Trace* trace = nullptr) {
    StepBatch b;
    b.add(ids, 0, &st);
    auto X = tf.embed(b, trace);
    tf.run_layers(0, tf.config().n_layers, b, X, trace);
    return X;
  }
  std::vector<float> decode(int32_t id, int pos, RequestState& st) {
    StepBatch b;
    b.add({id}, pos, &st);
    auto X = tf.embed(b);
    tf.run_layers(0, tf.config().n_layers, b, X);
    return tf.logits(X, {0});
  }
  std::vector<float> all_logits(const std::vector<float>& X, int n, Trace* trace = nullptr) {
    std::vector<int> rows(n);
    for (int i = 0; i < n; ++i) rows[i] = i;
    return tf.logits(X, rows, trace);
  }
};

// |a - b| <= rel * |b| for every element (identical infinities pass); reports the worst.
inline ::testing::AssertionResult close_rel(const std::vector<float>& a, const std::vector<float>& b, double rel) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "size " << a.size() << " vs golden " << b.size();
  std::size_t bad = 0, worst = 0, identical = 0;
  double worst_d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) {
      ++identical;
      continue;
    }
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (!(d <= rel * std::abs(double(b[i])))) {
      ++bad;
      if (!(d <= worst_d)) worst_d = d, worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess() << identical << "/" << a.size() << " identical";
  return ::testing::AssertionFailure() << bad << " of " << a.size() << " elements differ beyond " << rel
                                       << " relative (" << identical << " identical); worst at " << worst << ": "
                                       << a[worst] << " vs golden " << b[worst];
}

}  // namespace flashline::testing
