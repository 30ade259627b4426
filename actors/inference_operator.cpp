#include "actors/inference_operator.hpp"

#include <unordered_set>

#include <caf/all.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "policies/credit.hpp"
#include "policies/inflight_table.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

/// A batch being filled: the tickets of its records and their inputs.
struct open_batch {
  std::vector<uint64_t> tickets;
  call_request request;
};

struct operator_state {
  operator_settings cfg;
  std::string stage_label; // "stage 1 \"sentiment\""
  /// `"field":` prefixes for each output column, in the model's order.
  std::vector<std::string> member_prefix;
  /// Output columns that are written (by index in the result's names).
  std::vector<std::string> output_targets;

  record_producer upstream;
  uint32_t upstream_port = 0;
  receive_credit inbound{1};
  send_credit outbound;
  inflight_table<record> table{output_mode::ordered};
  open_batch batch;
  size_t calls_outstanding = 0;
  bool eos_received = false;
  bool eos_sent = false;
  simdjson::dom::parser parser;
  /// Tickets of records that already hold a field an output will write.
  std::unordered_set<uint64_t> clashing;
};

using operator_pointer = operator_actor::stateful_pointer<operator_state>;

void fail_record(operator_pointer self, record& rec, const std::string& why) {
  auto& st = self->state;
  rec.error = st.stage_label + ": " + why;
  if (st.cfg.model->on_failure == failure_action::fail_job)
    self->send(st.cfg.supervisor, fail_atom::value,
               rec.error + " (record offset " + std::to_string(rec.id.offset)
                 + "; failure-action is \"fail-job\")");
}

/// Parses `rec`, appends its inputs to the open batch; false (and the record
/// marked failed) if it cannot be scored.
bool extract_inputs(operator_pointer self, uint64_t ticket, record& rec) {
  auto& st = self->state;
  auto& model = *st.cfg.model;
  simdjson::dom::element root;
  if (auto err = st.parser.parse(rec.json).get(root)) {
    fail_record(self, rec, std::string{"malformed JSON: "} + simdjson::error_message(err));
    return false;
  }
  simdjson::dom::object obj;
  if (root.get(obj)) {
    fail_record(self, rec, "not a JSON object");
    return false;
  }
  auto first = st.batch.request.values.size();
  for (auto& in : model.input) {
    simdjson::dom::element v;
    if (obj.at_key(in.second).get(v)) {
      st.batch.request.values.resize(first);
      fail_record(self, rec, "missing field \"" + in.second + "\" (model input \"" + in.first + "\")");
      return false;
    }
    std::string_view sv;
    if (v.get(sv) == simdjson::SUCCESS) {
      auto& out = st.batch.request.values.emplace_back();
      out.reserve(sv.size() + 2);
      append_json_string(out, sv);
    } else {
      st.batch.request.values.push_back(simdjson::minify(v));
    }
  }
  // Output fields replace input fields of the same name (no duplicate keys);
  // the record keeps its text until the call succeeds (a dead letter shows
  // the record as it arrived).
  for (auto& target : st.output_targets) {
    simdjson::dom::element v;
    if (obj.at_key(target).get(v) == simdjson::SUCCESS) {
      st.clashing.insert(ticket);
      break;
    }
  }
  return true;
}

/// Rewrites `rec.json` without the fields the outputs will write.
void drop_output_fields(operator_pointer self, record& rec) {
  auto& st = self->state;
  simdjson::dom::object obj;
  if (st.parser.parse(rec.json).get(obj))
    return;
  std::string rebuilt = "{";
  for (auto field : obj) {
    bool replaced = false;
    for (auto& target : st.output_targets)
      replaced = replaced || field.key == target;
    if (replaced)
      continue;
    if (rebuilt.size() > 1)
      rebuilt.push_back(',');
    append_json_string(rebuilt, field.key);
    rebuilt.push_back(':');
    rebuilt += simdjson::minify(field.value);
  }
  rebuilt.push_back('}');
  rec.json = std::move(rebuilt);
}

void emit(operator_pointer self);
void maybe_finish(operator_pointer self);

void apply_result(operator_pointer self, const std::vector<uint64_t>& tickets, call_result& res) {
  auto& st = self->state;
  auto& model = *st.cfg.model;
  // Map the result's columns to record fields once per call.
  std::vector<int> column_of(model.output.size(), -1);
  for (size_t k = 0; k < model.output.size(); ++k)
    for (size_t c = 0; c < res.names.size(); ++c)
      if (res.names[c] == model.output[k].first)
        column_of[k] = static_cast<int>(c);
  const std::string* missing_column = nullptr;
  for (size_t k = 0; k < model.output.size(); ++k)
    if (column_of[k] < 0)
      missing_column = &model.output[k].first;
  const call_error missing{error_class::fatal_endpoint,
                           missing_column == nullptr ? std::string{}
                                                     : "the result has no output \"" + *missing_column + "\"",
                           std::chrono::milliseconds{0}};
  const call_error bad_shape{error_class::fatal_endpoint,
                             "the result does not have one entry per record of the batch ("
                               + std::to_string(tickets.size()) + " records)",
                             std::chrono::milliseconds{0}};
  for (uint32_t row = 0; row < tickets.size(); ++row) {
    auto& rec = st.table.at(tickets[row]);
    const call_error* err = nullptr;
    if (!res.error.ok())
      err = &res.error;
    else if (res.row_errors.size() == tickets.size() && !res.row_errors[row].ok())
      err = &res.row_errors[row];
    else if (!res.row_errors.empty() && res.row_errors.size() != tickets.size())
      err = &bad_shape;
    if (err == nullptr && res.values.size() != tickets.size() * res.names.size())
      err = &bad_shape;
    if (err == nullptr && missing_column != nullptr)
      err = &missing;
    if (err != nullptr) {
      fail_record(self, rec, std::string{to_string(err->cls)} + ": " + err->message);
    } else {
      if (!st.clashing.empty() && st.clashing.count(tickets[row]) > 0)
        drop_output_fields(self, rec);
      // Close the object once: drop '}', append every member, re-add '}'.
      auto& j = rec.json;
      while (!j.empty() && j.back() != '}')
        j.pop_back();
      if (!j.empty()) {
        j.pop_back();
        auto last = j.find_last_not_of(" \t\r\n");
        bool empty_object = last != std::string::npos && j[last] == '{';
        for (size_t k = 0; k < model.output.size(); ++k) {
          if (!empty_object)
            j.push_back(',');
          empty_object = false;
          j += st.member_prefix[k];
          j += res.at(row, static_cast<size_t>(column_of[k]));
        }
        j.push_back('}');
      }
    }
    if (!st.clashing.empty())
      st.clashing.erase(tickets[row]);
    st.table.complete(tickets[row]);
  }
}

void dispatch(operator_pointer self) {
  auto& st = self->state;
  if (st.batch.tickets.empty())
    return;
  auto tickets = std::make_shared<const std::vector<uint64_t>>(std::move(st.batch.tickets));
  auto request = std::move(st.batch.request);
  request.rows = static_cast<uint32_t>(tickets->size());
  st.batch = open_batch{};
  st.batch.request.names = request.names;
  st.batch.tickets.reserve(st.cfg.model->batch_max_size);
  st.batch.request.values.reserve(st.cfg.model->batch_max_size * request.names.size());
  ++st.calls_outstanding;
  st.cfg.counters->stages[st.cfg.stage].calls.fetch_add(1, std::memory_order_relaxed);
  self->request(st.cfg.endpoint, caf::infinite, infer_atom::value, std::move(request))
    .then(
      [=](call_result& res) {
        auto& st = self->state;
        --st.calls_outstanding;
        apply_result(self, *tickets, res);
        emit(self);
        maybe_finish(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        --st.calls_outstanding;
        call_result res;
        res.error = call_error{error_class::retryable,
                               "endpoint unavailable: " + self->system().render(err),
                               std::chrono::milliseconds{0}};
        apply_result(self, *tickets, res);
        emit(self);
        maybe_finish(self);
      });
}

/// Sends every record allowed to leave (by order and downstream credit),
/// then grants the freed credit upstream.
void emit(operator_pointer self) {
  auto& st = self->state;
  record_chunk out;
  out.reserve(std::min<uint64_t>(st.outbound.available(), st.table.size()));
  record rec;
  while (st.outbound.available() > 0 && st.table.pop_ready(rec)) {
    st.outbound.take();
    out.push_back(std::move(rec));
  }
  if (out.empty())
    return;
  auto n = out.size();
  st.inbound.left(n);
  st.cfg.counters->stages[st.cfg.stage].left.fetch_add(n, std::memory_order_relaxed);
  self->send(st.cfg.downstream, records_atom::value, st.cfg.downstream_port, std::move(out));
  if (auto grant = st.inbound.take_grant(); grant > 0 && st.upstream)
    self->send(st.upstream, credit_atom::value, st.upstream_port, grant);
}

void maybe_finish(operator_pointer self) {
  auto& st = self->state;
  if (!st.eos_received || st.eos_sent || !st.table.empty() || st.calls_outstanding > 0)
    return;
  st.eos_sent = true;
  self->send(st.cfg.downstream, eos_atom::value, st.cfg.downstream_port);
  self->quit();
}

operator_actor::behavior_type operator_behavior(operator_pointer self, operator_settings cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  auto& model = *st.cfg.model;
  st.stage_label = "stage " + std::to_string(st.cfg.stage + 1) + " \"" + model.name + "\"";
  for (auto& out : model.output) {
    st.member_prefix.push_back(json_quote(out.second) + ":");
    st.output_targets.push_back(out.second);
  }
  for (auto& in : model.input)
    st.batch.request.names.push_back(in.first);
  st.inbound = receive_credit{model.max_concurrent_operations};
  st.table = inflight_table<record>{st.cfg.mode};
  self->send(st.cfg.downstream, connect_atom::value, caf::actor_cast<record_producer>(self),
             uint32_t{0}, st.cfg.downstream_port);
  return {
    [=](connect_atom, record_producer up, uint32_t out_port, uint32_t) {
      auto& st = self->state;
      st.upstream = std::move(up);
      st.upstream_port = out_port;
      self->send(st.upstream, credit_atom::value, out_port, st.inbound.initial_grant());
    },
    [=](records_atom, uint32_t, record_chunk& chunk) {
      auto& st = self->state;
      auto max_batch = st.cfg.model->batch_max_size;
      if (!st.inbound.arrived(chunk.size())) {
        self->send(st.cfg.supervisor, fail_atom::value,
                   st.stage_label + ": upstream sent more records than granted (protocol bug)");
      }
      st.cfg.counters->stages[st.cfg.stage].note_held(st.inbound.held());
      for (auto& rec : chunk) {
        bool scorable = !rec.failed();
        auto ticket = st.table.admit(std::move(rec));
        auto& held = st.table.at(ticket);
        if (scorable && extract_inputs(self, ticket, held)) {
          st.batch.tickets.push_back(ticket);
          if (st.batch.tickets.size() >= max_batch)
            dispatch(self);
        } else {
          st.table.complete(ticket);
        }
      }
      dispatch(self);
      emit(self);
    },
    [=](credit_atom, uint32_t, uint64_t n) {
      self->state.outbound.grant(n);
      emit(self);
      maybe_finish(self);
    },
    [=](eos_atom, uint32_t) {
      self->state.eos_received = true;
      maybe_finish(self);
    },
  };
}

} // namespace

operator_actor spawn_inference_operator(caf::actor_system& sys, operator_settings settings) {
  return sys.spawn(operator_behavior, std::move(settings));
}

} // namespace sinfer
