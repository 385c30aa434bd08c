#include "tests/http/scripted_engine.h"

#include <fmt/format.h>

#include "base/input_error.h"

namespace flashline::test {

ScriptedEngine::ScriptedEngine(const Tokenizer& tokenizer, int context_limit, std::chrono::microseconds interval)
    : tokenizer_(tokenizer), context_limit_(context_limit), interval_(interval), thread_([this] { loop(); }) {}

ScriptedEngine::~ScriptedEngine() { shutdown(0); }

int64_t ScriptedEngine::submit(EngineRequest request) {
  if (request.prompt.empty()) throw InputError("prompt: empty");
  for (std::size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab_size())
      throw InputError(fmt::format("prompt[{}]: token id {} is not in the vocabulary", i, request.prompt[i]));
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.sampling.max_tokens;
  if (total > context_limit_)
    throw InputError(fmt::format("prompt ({} tokens) + max_tokens ({}) is over the context limit {}",
                                 request.prompt.size(), request.sampling.max_tokens, context_limit_));
  std::vector<int> prompt(request.prompt.begin(), request.prompt.end());
  const std::string text = tokenizer_.decode(prompt);
  std::string reply;
  bool endless = false;
  if (text.find("SCRIPT:tool") != std::string::npos)
    reply = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" "
            "string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  else if (text.find("SCRIPT:think") != std::string::npos)
    reply = "Let me add 2 and 2.</think>The answer is 4.";
  else if (text.find("SCRIPT:long") != std::string::npos)
    endless = true;
  else
    reply = "Hello! This is a scripted reply. Stop here, please.";
  Active a;
  if (!endless) {
    for (int id : tokenizer_.encode(reply)) a.reply.push_back(id);
    a.reply.push_back(eos_id());
  }
  a.request = std::move(request);
  std::lock_guard lock(mutex_);
  if (stopping_) throw InputError("the engine is shutting down");
  prompt_tokens_ += static_cast<int64_t>(a.request.prompt.size());
  const int64_t id = next_id_++;
  active_.emplace(id, std::move(a));
  wake_.notify_all();
  return id;
}

void ScriptedEngine::abort(int64_t request) {
  std::lock_guard lock(mutex_);
  auto it = active_.find(request);
  if (it != active_.end()) it->second.abort = true;
  wake_.notify_all();
}

EngineStats ScriptedEngine::stats() const {
  std::lock_guard lock(mutex_);
  EngineStats s;
  s.running = static_cast<int64_t>(active_.size());
  s.kv_pages_used = static_cast<int64_t>(active_.size());
  s.kv_pages_total = kPages;
  s.prompt_tokens = prompt_tokens_;
  s.generation_tokens = generation_tokens_;
  s.finished = finished_;
  s.aborted = aborted_;
  s.stage_step_seconds = {std::chrono::duration<double>(interval_).count()};
  return s;
}

void ScriptedEngine::shutdown(double timeout_s) {
  (void)timeout_s;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [id, a] : active_) a.abort = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ScriptedEngine::loop() {
  const int32_t word = tokenizer_.encode(" word").front();
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !active_.empty(); });
    if (active_.empty() && stopping_) return;
    // One step: every active request gets its next token (callbacks run without the lock, as the
    // real engine runs them outside its own state).
    std::vector<std::pair<std::function<void(const TokenEvent&)>, TokenEvent>> events;
    for (auto it = active_.begin(); it != active_.end();) {
      Active& a = it->second;
      TokenEvent e;
      e.request = it->first;
      if (a.abort) {
        e.finish = FinishReason::Abort;
        ++aborted_;
      } else {
        const SamplingParams& s = a.request.sampling;
        e.id = a.reply.empty() ? word : a.reply[std::min(a.next, a.reply.size() - 1)];
        ++a.next;
        ++a.generated;
        ++generation_tokens_;
        e.position = static_cast<int32_t>(a.request.prompt.size()) + a.generated - 1;
        if (s.logprobs >= 0) {
          e.logprob = -0.25f;
          for (int k = 0; k < s.logprobs; ++k) e.top.emplace_back(k == 0 ? e.id : 100 + k, -0.25f - static_cast<float>(k));
        }
        const bool stop_token = std::find(s.stop_token_ids.begin(), s.stop_token_ids.end(), e.id) != s.stop_token_ids.end();
        if ((e.id == eos_id() && !s.ignore_eos) || stop_token)
          e.finish = FinishReason::Stop;
        else if (a.generated >= s.max_tokens)
          e.finish = FinishReason::Length;
        if (e.id == eos_id() && s.ignore_eos) a.next = 0;  // start the script again
      }
      events.emplace_back(a.request.on_token, std::move(e));
      if (events.back().second.finish != FinishReason::None) {
        if (events.back().second.finish != FinishReason::Abort) ++finished_;
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    for (auto& [fn, e] : events) fn(e);
    std::this_thread::sleep_for(interval_);
    lock.lock();
  }
}

}  // namespace flashline::test
