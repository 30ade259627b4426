#pragma once
/// What an HTTP model protocol is to sinfer: how a batch becomes one request
/// body, and how an answer becomes per-record results. The connection pool
/// (`http_backend`) is the same for every protocol; `http-json`, `kserve-v2`
/// and `openai` each implement this interface (http_json.hpp, kserve_v2.hpp,
/// openai.hpp). Pure functions of their settings: no sockets, no threads, no
/// CAF, so every encoder and decoder is tested (and fuzzed) on strings.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/call.hpp"

namespace sinfer {

/// One HTTP answer as the pool saw it. `status` 0: no answer
/// (`transport_error` says why).
struct http_answer {
  int status = 0;
  std::string body;
  std::string retry_after;
  /// The answer's Content-Type header (empty when absent), for messages
  /// about a body that is not what the protocol expects.
  std::string content_type;
  std::string transport_error;
  /// No answer within the socket timeout (an overload signal).
  bool timed_out = false;
};

/// A batch as encoded: the request body, plus the rows of the batch that
/// could not be encoded (they fail as fatal for the record, the others go).
struct http_request {
  std::string body;
  /// Per row of the batch: empty message = sent; else why it was not.
  std::vector<call_error> rejected;
  /// Rows sent (the batch minus `rejected` ones).
  uint32_t rows = 0;
};

class http_protocol {
public:
  virtual ~http_protocol() = default;

  /// Output names every successful call returns, in column order.
  virtual const std::vector<std::string>& output_names() const = 0;

  /// The path every call is POSTed to ("/infer", "/v2/models/m/infer").
  virtual const std::string& path() const = 0;

  /// Most records one request may carry (0: no limit); the job clamps
  /// `batch.max-size` to it (chat completions take one record per call).
  virtual uint32_t max_rows() const {
    return 0;
  }

  /// The request for `req`. A row that cannot be expressed in this
  /// protocol (e.g. a number where the tensor holds strings) is rejected
  /// with a reason instead of failing the batch.
  virtual http_request encode(const call_request& req) const = 0;

  /// The per-record results of an answer to a request of `rows` rows.
  /// Failed calls (transport errors, non-2xx) are classified by
  /// `classify_answer`; a 2xx whose body does not fit the protocol fails the
  /// call as fatal for the endpoint (the records retry elsewhere).
  virtual call_result decode(uint32_t rows, const http_answer& answer) const = 0;
};

/// The error message in a JSON error body, in any of the shapes servers use:
/// {"error": "msg"} (KServe v2 / Triton, http-json), {"error": {"message":
/// "msg", ...}} (OpenAI), {"object": "error", "message": "msg"} (older
/// vLLM), {"detail": "msg"} (FastAPI). Empty when there is none.
std::string error_message_of(const std::string& body);

/// A failed answer as a call result: transport errors and non-2xx statuses
/// classified (policies/http_status.hpp), the server's message included.
call_result classify_answer(const std::vector<std::string>& outputs, const http_answer& answer);

/// The result of a 2xx answer the protocol cannot read: fatal for the
/// endpoint, with `why`.
call_result unreadable_answer(const std::vector<std::string>& outputs, std::string why);

/// Why a 2xx answer whose body does not parse as JSON cannot be read:
/// "the answer is empty (HTTP 200)" or "the answer is not JSON (HTTP 200,
/// Content-Type text/html, 1234 bytes, starting \"<html>...\"): `parse_error`".
/// The excerpt is at most 48 bytes, printable ASCII (other bytes as \xNN).
std::string not_json_reason(const http_answer& answer, const std::string& parse_error);

/// Why a 2xx answer that is JSON but lacks what the protocol needs cannot
/// be read: when its body is an error in one of the shapes
/// `error_message_of` knows, "the server answered HTTP 200 with an error
/// instead of results: MSG"; otherwise "the answer " + `what` (e.g. "has no
/// \"outputs\" array").
std::string missing_results_reason(const http_answer& answer, const std::string& what);

/// A JSON string's content (unescaped) when `json` is a JSON string;
/// otherwise `json` itself (numbers, objects... as their JSON text).
std::string json_text_value(const std::string& json);

} // namespace sinfer
