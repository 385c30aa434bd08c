#include "runtime/last_stage.h"

#include <fmt/format.h>

#include <cmath>

namespace flashline {

LastStage::LastStage(StageExecutor& executor, int context_limit) : ex_(executor), context_limit_(context_limit) {}

void LastStage::add(const AddRecord& a) {
  Request r;
  r.add = a;
  r.counts.add_prompt({a.tokens.data(), std::size_t(a.prompt_len)});
  for (std::size_t i = a.prompt_len; i < a.tokens.size(); ++i) r.counts.add_generated(a.tokens[i]);
  r.generated = int32_t(a.tokens.size()) - a.prompt_len;
  requests_[a.request] = std::move(r);
}

void LastStage::release(int64_t request) { requests_.erase(request); }

TokenEvent LastStage::sample(Request& r, const float* row, int32_t position) {
  const int V = ex_.config().vocab;
  const auto& p = r.add.params;
  TokenEvent e;
  e.request = r.add.request;
  e.position = position;
  for (int i = 0; i < V; ++i)
    if (!std::isfinite(row[i])) {
      e.finish = FinishReason::Error;
      e.error = fmt::format("non-finite logit ({}) for token {} at position {}", row[i], i, position);
      return e;
    }
  const auto s = sampler_.sample({row, std::size_t(V)}, p, r.counts, p.seed, uint64_t(position));
  const auto& forced = r.add.debug.forced;
  e.id = r.generated < int32_t(forced.size()) ? forced[r.generated] : s.id;
  e.logprob = s.logprob;
  e.top = s.top;
  if (r.add.debug.token_logits) e.logits.assign(row, row + V);
  r.counts.add_generated(e.id);
  ++r.generated;
  if (is_stop_token(e.id, p, ex_.config().eos_id))
    e.finish = FinishReason::Stop;
  else if (r.generated >= p.max_tokens || position + 1 >= context_limit_)
    e.finish = FinishReason::Length;
  return e;
}

void LastStage::finish_step(const ForwardMessage& m, SampledMessage& sampled, StreamMessage& stream) {
  const ModelConfig& c = ex_.config();
  const std::size_t stride = std::size_t(c.hc) * c.dim;
  // The rows the head must see: each sampling row, and every prompt row of a request that
  // keeps its prompt logits.
  std::vector<int> rows;
  struct SeqRows {
    std::size_t seq;
    int first;    // its first logits row
    bool prompt;  // all its rows have logits (prompt logits kept)
  };
  std::vector<SeqRows> seq_rows;
  int row = 0;
  for (std::size_t i = 0; i < m.seqs.size(); ++i) {
    const auto& s = m.seqs[i];
    auto it = requests_.find(s.request);
    if (it == requests_.end()) throw std::runtime_error(fmt::format("last stage: request {} has no sampler state", s.request));
    const auto& r = it->second;
    const bool prompt = r.add.debug.prompt_logits && s.start_pos < r.add.prompt_len;
    seq_rows.push_back({i, int(rows.size()), prompt});
    for (int k = prompt ? 0 : s.rows - 1; k < s.rows; ++k)
      if (prompt || s.sample) rows.push_back(row + k);
    if (r.add.debug.mtp_logits && s.start_pos < r.add.prompt_len)
      it->second.prompt_stream.insert(it->second.prompt_stream.end(), m.X.begin() + std::ptrdiff_t(row * stride),
                                      m.X.begin() + std::ptrdiff_t((row + s.rows) * stride));
    row += s.rows;
  }
  const auto logits = ex_.logits(m.X, rows);
  // MTP over the prompts completed in this step (debug), one collective call for all lanes.
  std::vector<StageExecutor::MtpJob> jobs;
  std::vector<int64_t> job_of;
  for (const auto& s : m.seqs) {
    auto& r = requests_.at(s.request);
    if (!r.add.debug.mtp_logits || s.start_pos + s.rows != r.add.prompt_len || r.add.prompt_len < 2) continue;
    r.prompt_stream.resize(std::size_t(r.add.prompt_len - 1) * stride);
    jobs.emplace_back(std::move(r.prompt_stream),
                      std::vector<int32_t>(r.add.tokens.begin() + 1, r.add.tokens.begin() + r.add.prompt_len));
    job_of.push_back(s.request);
    r.prompt_stream.clear();
  }
  std::map<int64_t, std::vector<float>> mtp;
  if (m.stage_mtp_rows > 0) {
    auto out = ex_.mtp_over_prompts(jobs);
    for (std::size_t j = 0; j < out.size(); ++j) mtp[job_of[j]] = std::move(out[j]);
  }
  const int V = c.vocab;
  for (const auto [i, first, prompt] : seq_rows) {
    const auto& s = m.seqs[i];
    auto& r = requests_.at(s.request);
    if (prompt)
      r.prompt_logits.insert(r.prompt_logits.end(), logits.begin() + std::ptrdiff_t(first) * V,
                             logits.begin() + std::ptrdiff_t(first + s.rows) * V);
    if (!s.sample) continue;
    const int last = prompt ? first + s.rows - 1 : first;
    auto e = sample(r, &logits[std::size_t(last) * V], s.start_pos + s.rows);
    if (s.start_pos + s.rows == r.add.prompt_len) e.prompt_logits = std::move(r.prompt_logits);
    if (auto it = mtp.find(s.request); it != mtp.end()) e.mtp_logits = std::move(it->second);
    sampled.entries.push_back({s.request, e.id, e.finish != FinishReason::None});
    if (e.finish != FinishReason::None) requests_.erase(s.request);
    stream.events.push_back(std::move(e));
  }
}

}  // namespace flashline
