#pragma once
/// How an HTTP answer (or a failure to get one) is classified for retries,
/// breakers and failure actions. Shared by the http-json, kserve-v2 and
/// openai backends.
///
/// - 2xx: success.
/// - No answer (connect refused, reset, TLS failure, read timeout): retryable.
/// - 408 Request Timeout: retryable.
/// - 429 Too Many Requests: rate-limited; wait the Retry-After (default 1 s
///   when the server gives none or an unreadable one).
/// - 503 Service Unavailable: rate-limited when it carries Retry-After,
///   else retryable.
/// - other 5xx: retryable.
/// - 401, 403 (auth) and 404 (no such model or route): fatal for the
///   endpoint: every record would fail the same way there.
/// - other 4xx: fatal for the record (the request itself is bad).
/// - 1xx and 3xx (e.g. a redirect to https, which is not followed): fatal
///   for the endpoint (its URL is wrong for every record).
/// Retry-After is capped at `max_retry_after` (10 min): a server's typo
/// must not pause an endpoint for years.
/// Pure: the wall-clock time needed for an HTTP-date Retry-After is an
/// argument.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "messages/call.hpp"

namespace sinfer {

/// Parses a Retry-After value: delta-seconds ("120") or an IMF-fixdate
/// ("Wed, 21 Oct 2015 07:28:00 GMT") relative to `now_unix_seconds`. A date
/// in the past gives zero; anything else unreadable gives nullopt.
inline std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view v, int64_t now_unix_seconds) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  if (v.empty())
    return std::nullopt;
  bool digits = true;
  for (char c : v)
    digits = digits && c >= '0' && c <= '9';
  if (digits) {
    if (v.size() > 9)
      return std::chrono::milliseconds{int64_t{999999999} * 1000};
    int64_t s = 0;
    for (char c : v)
      s = s * 10 + (c - '0');
    return std::chrono::milliseconds{s * 1000};
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters).
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29 || v[3] != ',' || v[4] != ' ' || v.substr(26) != "GMT")
    return std::nullopt;
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (v[i] < '0' || v[i] > '9')
        return false;
      out = out * 10 + (v[i] - '0');
    }
    return true;
  };
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, month = -1;
  for (int m = 0; m < 12; ++m)
    if (v.substr(8, 3) == months[m])
      month = m;
  if (month < 0 || !num(5, 2, day) || !num(12, 4, year) || !num(17, 2, hh) || !num(20, 2, mm)
      || !num(23, 2, ss) || v[16] != ' ' || v[19] != ':' || v[22] != ':' || v[25] != ' ' || hh > 23 || mm > 59
      || ss > 60 || day < 1 || day > 31)
    return std::nullopt;
  // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
  int y = year - (month < 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int mp = (month + 10) % 12; // March = 0
  int doy = (153 * mp + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = int64_t{era} * 146097 + doe - 719468;
  int64_t at = days * 86400 + hh * 3600 + mm * 60 + ss;
  return std::chrono::milliseconds{std::max<int64_t>(0, at - now_unix_seconds) * 1000};
}

/// Classifies an HTTP exchange. `status` 0 means no answer (`message` says
/// why); `retry_after` is the header's value (empty when absent).
constexpr std::chrono::milliseconds max_retry_after{10 * 60 * 1000};

inline call_error classify_http(int status, std::string_view retry_after, int64_t now_unix_seconds,
                                std::string message) {
  using std::chrono::milliseconds;
  if (status >= 200 && status < 300)
    return {};
  auto text = [&](const char* what) {
    return (status == 0 ? std::string{what} : "HTTP " + std::to_string(status)) + (message.empty() ? "" : ": " + message);
  };
  if (status == 0)
    return call_error{error_class::retryable, text("no answer"), milliseconds{0}};
  auto wait = retry_after.empty() ? std::nullopt : parse_retry_after(retry_after, now_unix_seconds);
  if (wait && *wait > max_retry_after)
    wait = max_retry_after;
  if (status == 429)
    return call_error{error_class::rate_limited, text(""), wait.value_or(milliseconds{1000})};
  if (status == 503 && wait)
    return call_error{error_class::rate_limited, text(""), *wait};
  if (status == 408 || status >= 500)
    return call_error{error_class::retryable, text(""), milliseconds{0}};
  if (status == 401 || status == 403 || status == 404 || status < 200 || (status >= 300 && status < 400))
    return call_error{error_class::fatal_endpoint, text(""), milliseconds{0}};
  return call_error{error_class::fatal_record, text(""), milliseconds{0}};
}

} // namespace sinfer
