#include "launch/engine_run.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace flashline {

std::vector<RequestOutcome> run_requests(Engine& engine, std::vector<TimedRequest> requests,
                                         const std::function<void(std::size_t, const TokenEvent&)>& on_token) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto since = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  std::vector<RequestOutcome> out(requests.size());
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0;
  std::vector<int64_t> ids(requests.size(), -1);
  std::vector<bool> abort_sent(requests.size(), false);
  std::vector<std::pair<int, int>> abort_when(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i)
    abort_when[i] = {requests[i].abort_when_request, requests[i].abort_when_tokens};
  // Aborts whose trigger request has emitted enough tokens (called with `mu` held).
  auto fire_aborts = [&] {
    for (std::size_t k = 0; k < abort_when.size(); ++k) {
      const auto [j, n] = abort_when[k];
      if (j < 0 || abort_sent[k] || ids[k] < 0 || j >= int(out.size()) || int(out[j].ids.size()) < n) continue;
      abort_sent[k] = true;
      engine.abort(ids[k]);
    }
  };
  // Submission order: by arrival.
  std::vector<std::size_t> order(requests.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return requests[a].arrival_s < requests[b].arrival_s; });
  for (std::size_t i : order) {
    auto& r = requests[i];
    const auto at = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(r.arrival_s));
    std::this_thread::sleep_until(at);
    r.request.on_token = [&, i](const TokenEvent& e) {
      if (on_token) on_token(i, e);
      std::lock_guard lock(mu);
      auto& o = out[i];
      const double t = since();
      if (e.id >= 0) {
        if (o.ids.empty()) o.first_token_s = t;
        o.ids.push_back(e.id);
        o.logprobs.push_back(e.logprob);
        o.token_s.push_back(t);
        o.token_logits.insert(o.token_logits.end(), e.logits.begin(), e.logits.end());
      }
      if (!e.prompt_logits.empty()) o.prompt_logits = e.prompt_logits;
      if (!e.mtp_logits.empty()) o.mtp_logits = e.mtp_logits;
      fire_aborts();
      if (e.finish != FinishReason::None) {
        o.finish = e.finish;
        o.error = e.error;
        o.finished_s = t;
        ++done;
        cv.notify_all();
      }
    };
    std::lock_guard lock(mu);  // ids[i] is set before any callback reads it
    out[i].submitted_s = since();
    ids[i] = engine.submit(std::move(r.request));
    fire_aborts();
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done == requests.size(); });
  return out;
}

}  // namespace flashline
