#pragma once
// A fake OpenAI server for the benchmark's tests: every streamed request gets its first chunk
// `ttft_s` after the request arrived and one more every `itl_s` (absolute deadlines, so the gaps
// average exactly itl_s), `tokens` chunks in all, then the usage chunk and [DONE]. A prompt of
// "fail" gets HTTP 400 with an OpenAI error object. One Asio thread; stopped by the destructor.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <string>
#include <thread>

namespace flashline::testing {

class FakeSlowServer {
 public:
  FakeSlowServer(double ttft_s, double itl_s, int tokens, int prompt_tokens = 7);
  ~FakeSlowServer();
  std::string base_url() const;
  int requests_served() const { return served_; }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  double ttft_s_, itl_s_;
  int tokens_, prompt_tokens_;
  int served_ = 0;
  std::thread thread_;
  friend struct FakeSlowServerSession;
};

}  // namespace flashline::testing
