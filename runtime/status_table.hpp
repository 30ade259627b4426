#pragma once
/// `sinfer status --url URL`: reads a running job's /status (JSON,
/// runtime/metrics_text.hpp's status_json) and prints it as tables. No CAF.

#include <string>
#include <string_view>

namespace sinfer {

/// GETs `url` + "/status" (a trailing "/status" or "/" in `url` is fine);
/// false with `error` when there is no answer or not a 200.
bool fetch_status(const std::string& url, std::string& body, std::string& error);

/// The tables of a /status body; empty with `error` when it is not one.
std::string format_status_table(std::string_view json, std::string& error);

} // namespace sinfer
