#include "partition/plan_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/quantity.h"

namespace flashline {
namespace {

std::string experts_text(const StageDetail& d) {
  // A count, not an id range: "5 to 6" (the column is "experts/rank").
  return d.min_experts == d.max_experts ? fmt::format("{}", d.max_experts)
                                        : fmt::format("{} to {}", d.min_experts, d.max_experts);
}

std::string hosts_text(const StageDetail& d) {
  if (d.hosts.size() <= 2) return fmt::format("{}", fmt::join(d.hosts, ","));
  return fmt::format("{}..{} ({})", d.hosts.front(), d.hosts.back(), d.hosts.size());
}

std::string count_text(std::size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string layers_text(const StagePlan& s) {
  return fmt::format("{}-{}{}", s.first_layer, s.last_layer, s.mtp ? "+mtp" : "");
}

}  // namespace

std::string plan_table(const PlanResult& r) {
  const Plan& p = r.plan;
  std::string out = fmt::format("plan: {} x {} on {} ({} of {} ranks), context {} tokens, KV {}\n\n",
                                count_text(p.stages.size(), "stage", "stages"),
                                count_text(std::size_t(p.lanes), "lane", "lanes"), p.cluster, r.ranks_used, r.ranks_total, p.kv.context,
                                p.kv.format);
  out += fmt::format("{:<6} {:<22} {:<10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12}  {}\n", "stage", "hosts", "layers",
                     "experts/rank", "weights", "kv", "free", "decode step", "prefill step", "bottleneck");
  for (std::size_t s = 0; s < p.stages.size(); ++s) {
    const auto& st = p.stages[s];
    const auto& e = st.estimate;
    out += fmt::format("{:<6} {:<22} {:<10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12}  {}\n", s,
                       hosts_text(r.stages[s]), layers_text(st), experts_text(r.stages[s]),
                       format_bytes(double(e.weight_bytes)), format_bytes(double(e.kv_bytes)),
                       format_bytes(double(e.free_bytes)), format_seconds(e.decode_step_s),
                       format_seconds(e.prefill_step_s), e.bottleneck);
  }
  const auto& q = p.predicted;
  out += fmt::format("\nmemory per rank: weights + KV + free = usable (device memory less the reserve); experts/rank = "
                     "routed experts each rank holds per layer (a count)\n");
  out += fmt::format("KV budget: {} per rank; {} requests of {} tokens fit ({} per lane); the planned batch of {} "
                     "fits up to {} tokens each\n",
                     format_bytes(double(p.kv.bytes_per_rank)), r.max_requests, p.kv.context,
                     p.kv.requests_per_lane, q.batch, r.max_context);
  out += fmt::format("predicted decode:  {:.0f} tokens/s at batch {} ({:.1f} tokens/s per request, step {})\n",
                     q.decode_tokens_per_s, q.batch, q.decode_tokens_per_s / double(std::max<int64_t>(q.batch, 1)),
                     format_seconds(q.decode_step_s));
  out += fmt::format("predicted prefill: {:.0f} tokens/s ({} {}-token chunks in flight, step {})\n",
                     q.prefill_tokens_per_s, p.lanes * int64_t(p.stages.size()), q.prefill_chunk,
                     format_seconds(q.prefill_step_s));
  for (const auto& n : r.notes) out += fmt::format("note: {}\n", n);
  return out;
}

nlohmann::json plan_json(const PlanResult& r) {
  const Plan& p = r.plan;
  nlohmann::json j;
  j["cluster"] = p.cluster;
  j["stages"] = p.stages.size();
  j["lanes"] = p.lanes;
  j["ranks_used"] = r.ranks_used;
  j["ranks_total"] = r.ranks_total;
  j["context"] = p.kv.context;
  j["kv_format"] = p.kv.format;
  nlohmann::json stages = nlohmann::json::array();
  for (std::size_t s = 0; s < p.stages.size(); ++s) {
    const auto& st = p.stages[s];
    const auto& d = r.stages[s];
    stages.push_back({{"stage", s},
                      {"first_layer", st.first_layer},
                      {"last_layer", st.last_layer},
                      {"mtp", st.mtp},
                      {"ranks", st.ranks},
                      {"hosts", d.hosts},
                      {"experts_per_rank", {{"min", d.min_experts}, {"max", d.max_experts}}},
                      {"weight_bytes", st.estimate.weight_bytes},
                      {"kv_bytes", st.estimate.kv_bytes},
                      {"free_bytes", st.estimate.free_bytes},
                      {"usable_bytes", d.usable_bytes},
                      {"decode_step_s", st.estimate.decode_step_s},
                      {"prefill_step_s", st.estimate.prefill_step_s},
                      {"bottleneck", st.estimate.bottleneck},
                      {"decode_parts_s",
                       {{"compute", d.compute_s}, {"memory", d.memory_s}, {"all_to_all", d.all_to_all_s},
                        {"pipeline", d.pipeline_s}}}});
  }
  j["per_stage"] = stages;
  int64_t weights = 0, kv = 0;
  for (const auto& st : p.stages) weights += st.estimate.weight_bytes * p.lanes, kv += st.estimate.kv_bytes * p.lanes;
  j["totals"] = {{"weight_bytes", weights},
                 {"kv_bytes", kv},
                 {"kv_bytes_per_rank_budget", p.kv.bytes_per_rank},
                 {"max_requests", r.max_requests},
                 {"max_context_at_batch", r.max_context}};
  const auto& q = p.predicted;
  j["predicted"] = {{"batch", q.batch},
                    {"prefill_chunk", q.prefill_chunk},
                    {"decode_tokens_per_s", q.decode_tokens_per_s},
                    {"prefill_tokens_per_s", q.prefill_tokens_per_s},
                    {"decode_step_s", q.decode_step_s},
                    {"prefill_step_s", q.prefill_step_s}};
  j["notes"] = r.notes;
  return j;
}

std::string plan_svg(const PlanResult& r) {
  // One row per stage, one box per lane; box fill shows memory use (weights dark, KV light).
  const Plan& p = r.plan;
  const int box_w = std::max(40, 720 / std::max(1, p.lanes)), box_h = 46, left = 170, top = 40;
  const int width = left + box_w * p.lanes + 20, height = top + int(p.stages.size()) * (box_h + 14) + 40;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<text x=\"10\" y=\"20\" font-size=\"14\">{} x {} on {}: decode {:.0f} tok/s "
      "(batch {}), prefill {:.0f} tok/s</text>\n",
      width, height, count_text(p.stages.size(), "stage", "stages"), count_text(std::size_t(p.lanes), "lane", "lanes"),
      p.cluster, p.predicted.decode_tokens_per_s, p.predicted.batch,
      p.predicted.prefill_tokens_per_s);
  for (std::size_t st = 0; st < p.stages.size(); ++st) {
    const auto& stage = p.stages[st];
    const auto& e = stage.estimate;
    int y = top + int(st) * (box_h + 14);
    s += fmt::format("<text x=\"10\" y=\"{}\">stage {}: layers {}</text>\n", y + 18, st, layers_text(stage));
    s += fmt::format("<text x=\"10\" y=\"{}\">{} ({})</text>\n", y + 34, format_seconds(e.decode_step_s), e.bottleneck);
    double usable = double(r.stages[st].usable_bytes);
    for (int j = 0; j < p.lanes; ++j) {
      int x = left + j * box_w;
      double wf = std::clamp(double(e.weight_bytes) / usable, 0.0, 1.0);
      double kf = std::clamp(double(e.kv_bytes) / usable, 0.0, 1.0 - wf);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#eef\" stroke=\"#335\"/>\n", x, y,
                       box_w - 4, box_h);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"8\" fill=\"#335\"/>\n", x, y + box_h - 8,
                       (box_w - 4) * wf);
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"8\" fill=\"#9ad\"/>\n",
                       x + (box_w - 4) * wf, y + box_h - 8, (box_w - 4) * kf);
      const auto& rp = p.ranks[stage.ranks[j]];
      s += fmt::format("<text x=\"{}\" y=\"{}\">r{}</text>\n<text x=\"{}\" y=\"{}\" font-size=\"9\">{}</text>\n", x + 3,
                       y + 14, rp.rank, x + 3, y + 27, rp.node);
    }
  }
  s += fmt::format("<text x=\"10\" y=\"{}\" font-size=\"10\">bar: weights (dark) and KV (light) of usable memory per "
                   "rank</text>\n</svg>\n",
                   height - 12);
  return s;
}

}  // namespace flashline
