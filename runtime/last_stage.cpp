#include "runtime/last_stage.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flashline {

LastStage::LastStage(StageExecutor& executor, int context_limit, int speculative_tokens)
    : ex_(executor), context_limit_(context_limit), speculative_tokens_(speculative_tokens) {}

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
  // The rows the head must see: each sampling row (with drafts: the row before them and each
  // draft's row), and every prompt row of a request that keeps its prompt logits.
  std::vector<int> rows;
  struct SeqRows {
    std::size_t seq;
    int first;    // its first logits row
    int row;      // its first row in the step
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
    seq_rows.push_back({i, int(rows.size()), row, prompt});
    for (int k = prompt ? 0 : s.rows - 1 - s.drafts; k < s.rows; ++k)
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
  std::vector<MtpFeed> feeds;
  for (const auto [i, first, row0, prompt] : seq_rows) {
    const auto& s = m.seqs[i];
    auto& r = requests_.at(s.request);
    if (prompt)
      r.prompt_logits.insert(r.prompt_logits.end(), logits.begin() + std::ptrdiff_t(first) * V,
                             logits.begin() + std::ptrdiff_t(first + s.rows) * V);
    // Sampling, and with drafts their verification: the token sampled from the row at position
    // p is the one emitted at p + 1 whatever the drafts (same RNG draw as without them); a
    // draft is accepted while it equals that token, so the emitted ids never depend on the
    // drafts (docs/speculative.md).
    const int32_t t0 = s.start_pos + s.rows - 1 - s.drafts;  // position of the first sampling row
    int accepted = 0;
    bool finished = false;
    std::vector<int32_t> ids;
    if (s.sample) {
      const int base = first + (prompt ? s.rows - 1 - s.drafts : 0);
      for (int j = 0; j <= s.drafts; ++j) {
        auto e = sample(r, &logits[std::size_t(base + j) * V], t0 + j + 1);
        if (t0 + j + 1 == r.add.prompt_len) e.prompt_logits = std::move(r.prompt_logits);
        if (auto it = mtp.find(s.request); it != mtp.end() && j == 0) e.mtp_logits = std::move(it->second);
        if (e.id >= 0) ids.push_back(e.id);
        finished = e.finish != FinishReason::None;
        const bool match = j < s.drafts && e.id == m.ids[std::size_t(row0 + s.rows - s.drafts + j)];
        stream.events.push_back(std::move(e));
        if (match) ++accepted;
        if (finished || !match) break;
      }
      if (s.drafts > 0) {
        auto& spec = stream.spec;
        ++spec.drafts, spec.draft_tokens += s.drafts, spec.accepted_tokens += accepted;
        spec.accepted_at.resize(std::max(spec.accepted_at.size(), std::size_t(std::max(s.drafts, speculative_tokens_))), 0);
        for (int q = 0; q < accepted; ++q) ++spec.accepted_at.at(q);
      }
      sampled.entries.push_back({s.request, ids, {}, finished ? 1 : 0});
    }
    if (finished) {
      requests_.erase(s.request);
      continue;
    }
    if (speculative_tokens_ == 0) continue;
    // The MTP pairs this step completes: q from mtp_next up to the newest kept position, whose
    // next token is the one just sampled (or, in a prefill chunk, unknown until the next one).
    const int32_t last = s.sample ? t0 + accepted : s.start_pos + s.rows - 1;
    auto h_row = [&](int32_t q) { return m.X.begin() + std::ptrdiff_t(std::size_t(row0 + q - s.start_pos) * stride); };
    MtpFeed f;
    f.request = s.request;
    f.start = r.mtp_next;
    f.generated = r.generated;
    if (!r.mtp_pending.empty()) {
      if (r.mtp_next != s.start_pos - 1) throw std::logic_error("last stage: MTP pending row out of place");
      f.h = std::move(r.mtp_pending), f.next.push_back(m.ids[std::size_t(row0)]);
      r.mtp_pending.clear();
    }
    for (int32_t q = s.start_pos; q < last; ++q) {
      f.h.insert(f.h.end(), h_row(q), h_row(q) + std::ptrdiff_t(stride));
      f.next.push_back(m.ids[std::size_t(row0 + q + 1 - s.start_pos)]);
    }
    if (s.sample) {
      f.h.insert(f.h.end(), h_row(last), h_row(last) + std::ptrdiff_t(stride));
      f.next.push_back(ids.back());
      r.mtp_next = last + 1;
      f.draft = true;
      f.entry = sampled.entries.size() - 1;
    } else {
      r.mtp_pending.assign(h_row(last), h_row(last) + std::ptrdiff_t(stride));
      r.mtp_next = last;
    }
    if (!f.next.empty()) feeds.push_back(std::move(f));
  }
  if (speculative_tokens_ == 0) return;
  draft(feeds);
  for (auto& f : feeds)
    if (f.draft) sampled.entries.at(f.entry).drafts = std::move(f.drafts);
}

// k passes of the MTP block, a collective of the last stage's lanes (every lane runs all k):
// the first takes every request's new pairs into its MTP state and drafts one token from the
// newest; each further pass feeds the MTP's own output stream and its last draft one position
// on (drafts on drafts, vLLM's way to k > 1 with one MTP block) and is undone afterwards.
void LastStage::draft(std::vector<MtpFeed>& feeds) {
  const ModelConfig& c = ex_.config();
  const std::size_t stride = std::size_t(c.hc) * c.dim;
  const int V = c.vocab;
  std::vector<ExtendSeq> seqs;
  std::vector<int32_t> next;
  std::vector<float> h;
  for (const auto& f : feeds) {
    seqs.push_back({f.request, f.start, int32_t(f.next.size())});
    next.insert(next.end(), f.next.begin(), f.next.end());
    h.insert(h.end(), f.h.begin(), f.h.end());
  }
  auto out = ex_.extend_mtp(seqs, next, h, false);
  std::vector<int> at(feeds.size());  // each feed's newest row in `out`
  for (std::size_t j = 0, row = 0; j < feeds.size(); ++j) row += feeds[j].next.size(), at[j] = int(row) - 1;
  for (int pass = 0; pass < speculative_tokens_; ++pass) {
    if (pass > 0) {
      seqs.clear(), next.clear(), h.clear();
      int row = 0;
      for (std::size_t j = 0; j < feeds.size(); ++j) {
        const auto& f = feeds[j];
        if (!f.draft) continue;
        seqs.push_back({f.request, f.start + int32_t(f.next.size()) + pass - 1, 1});
        next.push_back(f.drafts.back());
        h.insert(h.end(), out.X.begin() + std::ptrdiff_t(at[j] * stride), out.X.begin() + std::ptrdiff_t((at[j] + 1) * stride));
        at[j] = row++;
      }
      out = ex_.extend_mtp(seqs, next, h, true);
    }
    for (std::size_t j = 0; j < feeds.size(); ++j) {
      auto& f = feeds[j];
      if (!f.draft) continue;
      const float* l = &out.logits[std::size_t(at[j]) * V];
      int32_t d = int32_t(std::max_element(l, l + V) - l);  // greedy draft: the first maximum
      const auto& forced = requests_.at(f.request).add.debug.draft_ids;
      const std::size_t g = std::size_t(f.generated) + f.drafts.size();  // generated index it predicts
      if (g < forced.size()) d = forced[g];
      f.drafts.push_back(d);
    }
  }
  for (const auto& f : feeds)
    if (f.draft) ex_.discard_mtp_drafts(f.request);
}

}  // namespace flashline
