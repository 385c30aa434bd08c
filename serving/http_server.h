#pragma once
// HTTP/1.1 with keep-alive on Boost.Beast over Boost.Asio: a few I/O threads, one strand per
// connection. A handler gets each request as an HttpExchange and answers it at once or later,
// whole or as a chunked stream (server-sent events); answers made later are posted to the
// exchange's strand from any thread. A client that goes away before its answer ends is noticed
// at once (the socket becomes readable at EOF), not only at the next write.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flashline {

struct HttpHeader {
  std::string name, value;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without the query
  std::string query;   // after '?', or empty
  std::vector<HttpHeader> headers;
  std::string body;
  // The first header of that name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  // Runs `fn` on this exchange's strand; callable from any thread (e.g. the engine's).
  virtual void post(std::function<void()> fn) = 0;
  // The rest must be called on the strand (the handler itself runs there). Calls after the
  // answer has ended, or after the client went away, are ignored.
  virtual void respond(int status, std::string_view content_type, std::string body,
                       std::vector<HttpHeader> headers = {}) = 0;
  virtual void begin_stream(int status, std::string_view content_type, std::vector<HttpHeader> headers = {}) = 0;
  virtual void send(std::string data) = 0;  // one piece of the stream, written as one chunk
  virtual void end_stream() = 0;
  // `fn` runs once, on the strand, if the client goes away before the answer has ended.
  virtual void on_disconnect(std::function<void()> fn) = 0;
  virtual bool disconnected() const = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: a free port (see HttpServer::port)
  int io_threads = 2;
  std::size_t max_body_bytes = 32u << 20;
  // The body (JSON) of an answer the server makes itself: 413 for a body over the limit, 400 for
  // a request that is not HTTP.
  std::function<std::string(int status, const std::string& message)> error_body;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. InputError if the address cannot be bound.
  void start(HttpHandler handler);
  int port() const;
  // Closes the listening socket; open connections go on.
  void stop_accepting();
  // Stops the I/O threads and closes every connection. Whatever holds exchanges must drop them
  // before the server is destroyed.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "HTTP/1.1 200 OK\r\n" etc.: the reason phrase of a status.
std::string_view http_reason(int status);

}  // namespace flashline
