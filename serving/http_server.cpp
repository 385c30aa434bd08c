#include "serving/http_server.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "base/input_error.h"

namespace flashline {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(300);    // keep-alive connection without a request
constexpr auto kLingerTimeout = std::chrono::seconds(5);    // draining an unread body before closing
constexpr std::size_t kHeaderLimit = 64 * 1024;

// Boost 1.74's Beast has its own string_view.
std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string head(int status, std::string_view content_type, const std::vector<HttpHeader>& headers, bool close) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: flashline\r\n", status, http_reason(status));
  if (!content_type.empty()) out += fmt::format("Content-Type: {}\r\n", content_type);
  for (const auto& h : headers) out += fmt::format("{}: {}\r\n", h.name, h.value);
  if (close) out += "Connection: close\r\n";
  return out;
}

class Connection;

class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Connection> c, std::uint64_t serial, HttpRequest r)
      : conn_(std::move(c)), serial_(serial), request_(std::move(r)) {}
  const HttpRequest& request() const override { return request_; }
  void post(std::function<void()> fn) override;
  void respond(int status, std::string_view content_type, std::string body, std::vector<HttpHeader> headers) override;
  void begin_stream(int status, std::string_view content_type, std::vector<HttpHeader> headers) override;
  void send(std::string data) override;
  void end_stream() override;
  void on_disconnect(std::function<void()> fn) override;
  bool disconnected() const override;

  std::function<void()> disconnect_handler;
  bool streaming = false, ended = false;

 private:
  bool live() const;
  std::shared_ptr<Connection> conn_;
  std::uint64_t serial_;
  HttpRequest request_;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const HttpServerOptions& options, const HttpHandler& handler)
      : stream_(std::move(socket)), options_(options), handler_(handler) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  auto executor() { return stream_.get_executor(); }
  bool closed() const { return closed_; }
  std::uint64_t serial() const { return serial_; }
  Exchange* current() const { return exchange_.get(); }

  void queue(std::string data) {
    if (closed_) return;
    out_.push_back(std::move(data));
    if (!writing_) write_next();
  }

  // The answer to the current exchange is complete once everything queued is written.
  void answer_complete() {
    answer_done_ = true;
    if (!writing_) write_next();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    exchange_.reset();  // it holds this connection: break the cycle
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();  // also cancels the stream's timer, whose handler holds the stream
  }

 private:
  void read() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(options_.max_body_bytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_error(ec);
    const auto& h = parser_->get();
    auto expect = h.find(http::field::expect);
    if (expect != h.end() && iequals(sv(expect->value()), "100-continue")) {
      // Without this, curl waits a second before sending a body over 1 KiB.
      std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
      auto buf = std::make_shared<std::string>(std::move(cont));
      net::async_write(stream_, net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec2, std::size_t) {
        if (ec2) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return answer_and_close(413, fmt::format("request body is over the limit of {} bytes (--max-body-bytes)",
                                               options_.max_body_bytes));
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message)
      return answer_and_close(400, fmt::format("malformed HTTP request: {}", ec.message()));
    close();
  }

  void answer_and_close(int status, const std::string& message) {
    const std::string body = options_.error_body ? options_.error_body(status, message) : message + "\n";
    std::string out = head(status, "application/json", {}, true);
    out += fmt::format("Content-Length: {}\r\n\r\n", body.size());
    out += body;
    auto buf = std::make_shared<std::string>(std::move(out));
    stream_.expires_after(kLingerTimeout);
    net::async_write(stream_, net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      // Read what the client is still sending before closing, or it may get a reset instead of
      // the answer.
      beast::error_code e;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, e);
      self->drain();
    });
  }

  void drain() {
    auto buf = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_error(ec);
    stream_.expires_never();
    http::request<http::string_body> req = parser_->release();
    HttpRequest r;
    r.method = std::string(sv(req.method_string()));
    const std::string_view target = sv(req.target());
    const std::size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    for (const auto& f : req) r.headers.push_back({std::string(sv(f.name_string())), std::string(sv(f.value()))});
    r.body = std::move(req.body());
    close_after_ = !req.keep_alive();
    answer_done_ = false;
    ++serial_;
    exchange_ = std::make_shared<Exchange>(shared_from_this(), serial_, std::move(r));
    watch_disconnect();
    std::shared_ptr<Exchange> ex = exchange_;
    try {
      handler_(ex);
    } catch (const std::exception& e) {
      if (!ex->ended) ex->respond(500, "text/plain", fmt::format("internal error: {}\n", e.what()), {});
    }
  }

  // The client can only send again after our answer (no pipelining is expected), so the socket
  // becoming readable with nothing to read means it closed its end.
  void watch_disconnect() {
    const std::uint64_t serial = serial_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), serial](beast::error_code ec) {
      if (ec == net::error::operation_aborted || self->serial_ != serial || !self->exchange_ || self->closed_) return;
      beast::error_code e;
      const std::size_t n = self->stream_.socket().available(e);
      if (ec || e || n == 0) self->lost();
      // Otherwise a pipelined request waits in the socket; it is read after this answer.
    });
  }

  void lost() {
    std::shared_ptr<Exchange> ex = exchange_;
    close();
    if (ex && !ex->ended && ex->disconnect_handler) {
      auto fn = std::move(ex->disconnect_handler);
      ex->disconnect_handler = nullptr;
      fn();
    }
  }

  void write_next() {
    if (closed_) return;
    if (out_.empty()) {
      writing_ = false;
      if (answer_done_) {
        answer_done_ = false;
        exchange_.reset();
        ++serial_;  // a stale disconnect watch must not touch the next exchange
        if (close_after_) {
          beast::error_code e;
          stream_.socket().shutdown(tcp::socket::shutdown_send, e);
          stream_.expires_after(kLingerTimeout);
          return drain();
        }
        read();
      }
      return;
    }
    writing_ = true;
    writing_buf_.clear();
    for (auto& s : out_) writing_buf_ += s;  // one write for everything queued
    out_.clear();
    net::async_write(stream_, net::buffer(writing_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->lost();
      self->write_next();
    });
  }

  beast::tcp_stream stream_;
  const HttpServerOptions& options_;
  const HttpHandler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Exchange> exchange_;
  std::uint64_t serial_ = 0;
  std::deque<std::string> out_;
  std::string writing_buf_;
  bool writing_ = false, answer_done_ = false, close_after_ = false, closed_ = false;
};

bool Exchange::live() const { return !ended && !conn_->closed() && conn_->serial() == serial_; }

void Exchange::post(std::function<void()> fn) { net::post(conn_->executor(), std::move(fn)); }

void Exchange::respond(int status, std::string_view content_type, std::string body, std::vector<HttpHeader> headers) {
  if (!live() || streaming) return;
  ended = true;
  std::string out = head(status, content_type, headers, false);
  out += fmt::format("Content-Length: {}\r\n\r\n", body.size());
  out += body;
  conn_->queue(std::move(out));
  conn_->answer_complete();
}

void Exchange::begin_stream(int status, std::string_view content_type, std::vector<HttpHeader> headers) {
  if (!live() || streaming) return;
  streaming = true;
  std::string out = head(status, content_type, headers, false);
  out += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
  conn_->queue(std::move(out));
}

void Exchange::send(std::string data) {
  if (!live() || !streaming || data.empty()) return;
  std::string chunk = fmt::format("{:x}\r\n", data.size());
  chunk += data;
  chunk += "\r\n";
  conn_->queue(std::move(chunk));
}

void Exchange::end_stream() {
  if (!live() || !streaming) return;
  ended = true;
  conn_->queue("0\r\n\r\n");
  conn_->answer_complete();
}

void Exchange::on_disconnect(std::function<void()> fn) {
  if (conn_->closed() && !ended) {
    fn();
    return;
  }
  disconnect_handler = std::move(fn);
}

bool Exchange::disconnected() const { return conn_->closed() && !ended; }

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

std::string_view http_reason(int status) {
  const std::string_view r = sv(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status))));
  return r.empty() ? std::string_view("Unknown") : r;
}

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  int port = 0;
  std::mutex connections_mutex;
  std::vector<std::weak_ptr<Connection>> connections;  // to close them all at stop()

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        beast::error_code e;
        socket.set_option(tcp::no_delay(true), e);  // SSE chunks are small and latency matters
        auto c = std::make_shared<Connection>(std::move(socket), options, handler);
        {
          std::lock_guard lock(connections_mutex);
          std::erase_if(connections, [](const auto& w) { return w.expired(); });
          connections.push_back(c);
        }
        c->start();
      }
      accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start(HttpHandler handler) {
  Impl& m = *impl_;
  m.handler = std::move(handler);
  beast::error_code ec;
  const auto address = net::ip::make_address(m.options.host, ec);
  if (ec) throw InputError(fmt::format("--host: '{}' is not an IP address", m.options.host));
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(m.options.port));
  m.acceptor.open(endpoint.protocol(), ec);
  if (!ec) m.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(endpoint, ec);
  if (!ec) m.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw InputError(fmt::format("cannot listen on {}:{}: {}", m.options.host, m.options.port, ec.message()));
  m.port = m.acceptor.local_endpoint().port();
  m.work.emplace(m.ioc.get_executor());
  m.accept();
  for (int i = 0; i < std::max(1, m.options.io_threads); ++i)
    m.threads.emplace_back([&m] {
      // A handler that throws fails its own connection, never the I/O thread.
      while (true) {
        try {
          m.ioc.run();
          return;
        } catch (const std::exception& e) {
          fmt::print(stderr, "flashline: http: {}\n", e.what());
        }
      }
    });
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop_accepting() {
  Impl& m = *impl_;
  net::post(m.acceptor.get_executor(), [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
  });
}

void HttpServer::stop() {
  Impl& m = *impl_;
  if (m.threads.empty()) return;
  // Close every connection on its strand and let the I/O threads run out of work, so every
  // connection is destroyed here rather than left to the I/O context's destructor.
  net::post(m.acceptor.get_executor(), [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
  });
  {
    std::lock_guard lock(m.connections_mutex);
    for (auto& w : m.connections)
      if (auto c = w.lock()) net::post(c->executor(), [c] { c->close(); });
    m.connections.clear();
  }
  m.work.reset();
  for (int i = 0; i < 200 && !m.ioc.stopped(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  m.ioc.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
}

}  // namespace flashline
