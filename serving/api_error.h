#pragma once
// A request the gateway refuses, as the OpenAI error object it becomes:
// {"error": {"message", "type", "param", "code"}} with an HTTP status. Thrown anywhere while a
// request is parsed or admitted; only that request fails.
#include <stdexcept>
#include <string>

namespace flashline {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string message, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // JSON path of the offending field, or empty
  const std::string& code() const { return code_; }
  // Seconds to put in Retry-After (429 only), 0 for none.
  int retry_after = 0;

  // The common cases.
  static ApiError bad_request(std::string message, std::string param = {}, std::string code = {}) {
    return ApiError(400, "invalid_request_error", std::move(message), std::move(param), std::move(code));
  }

 private:
  int status_;
  std::string type_, param_, code_;
};

}  // namespace flashline
