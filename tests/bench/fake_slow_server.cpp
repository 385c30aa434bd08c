#include "tests/bench/fake_slow_server.h"

#include <fmt/format.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

namespace flashline::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;

struct FakeSlowServerSession {
  static net::awaitable<void> serve(FakeSlowServer& server, tcp::socket socket) {
    boost::system::error_code ec;
    auto token = net::redirect_error(net::use_awaitable, ec);
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    co_await http::async_read(socket, buffer, req, token);
    if (ec) co_return;
    const auto arrived = std::chrono::steady_clock::now();
    ++server.served_;
    const json body = json::parse(req.body(), nullptr, false);
    const bool chat = req.target().ends_with("/chat/completions");
    const std::string prompt = body.is_object() && body.contains("prompt") && body["prompt"].is_string()
                                   ? body["prompt"].get<std::string>()
                                   : "";
    if (prompt == "fail") {
      const std::string error = R"({"error": {"message": "prompt refused", "type": "invalid_request_error"}})";
      const std::string answer = fmt::format(
          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
          error.size(), error);
      co_await net::async_write(socket, net::buffer(answer), token);
      co_return;
    }
    co_await net::async_write(
        socket, net::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")),
        token);
    net::steady_timer timer(socket.get_executor());
    for (int k = 0; k < server.tokens_ && !ec; ++k) {
      timer.expires_at(arrived + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(server.ttft_s_ + k * server.itl_s_)));
      co_await timer.async_wait(token);
      const json chunk = chat ? json{{"choices", {{{"index", 0}, {"delta", {{"content", fmt::format("w{} ", k)}}}}}}}
                              : json{{"choices", {{{"index", 0}, {"text", fmt::format("w{} ", k)}}}}};
      co_await net::async_write(socket, net::buffer("data: " + chunk.dump() + "\n\n"), token);
    }
    const json usage = {{"choices", json::array()},
                        {"usage",
                         {{"prompt_tokens", server.prompt_tokens_},
                          {"completion_tokens", server.tokens_},
                          {"total_tokens", server.prompt_tokens_ + server.tokens_}}}};
    co_await net::async_write(socket, net::buffer("data: " + usage.dump() + "\n\ndata: [DONE]\n\n"), token);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  static net::awaitable<void> accept(FakeSlowServer& server) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await server.acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      net::co_spawn(server.io_, serve(server, std::move(socket)), net::detached);
    }
  }
};

FakeSlowServer::FakeSlowServer(double ttft_s, double itl_s, int tokens, int prompt_tokens)
    : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
      ttft_s_(ttft_s),
      itl_s_(itl_s),
      tokens_(tokens),
      prompt_tokens_(prompt_tokens) {
  net::co_spawn(io_, FakeSlowServerSession::accept(*this), net::detached);
  thread_ = std::thread([this] { io_.run(); });
}

FakeSlowServer::~FakeSlowServer() {
  io_.stop();
  thread_.join();
}

std::string FakeSlowServer::base_url() const {
  return fmt::format("http://127.0.0.1:{}", acceptor_.local_endpoint().port());
}

}  // namespace flashline::testing
