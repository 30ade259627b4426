// Pure policies and helpers, tested as tables: credit, ordering, routing,
// record templates, JSON text helpers, durations.

#include <doctest/doctest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "policies/credit.hpp"
#include "policies/inflight_table.hpp"
#include "policies/partitioning.hpp"
#include "policies/stage_condition.hpp"
#include "runtime/config_loader.hpp"
#include "runtime/json_text.hpp"
#include "runtime/record_template.hpp"

using namespace sinfer;

TEST_CASE("send_credit: never sends past the grant") {
  send_credit c;
  CHECK_FALSE(c.take());
  c.grant(2);
  CHECK(c.take());
  CHECK(c.take());
  CHECK_FALSE(c.take());
  c.grant(5);
  CHECK_FALSE(c.take(6));
  CHECK(c.available() == 5);
  CHECK(c.take(5));
  CHECK(c.available() == 0);
}

TEST_CASE("send_credit: a new chunk needs a quarter of the capacity, at most max_chunk") {
  // Rows: capacity (first grant), max chunk, credit taken afterwards, may start?
  struct row {
    uint64_t capacity, max_chunk, taken;
    bool may_start;
  };
  std::vector<row> rows = {
    {256, 256, 0, true},    {256, 256, 192, true},  {256, 256, 193, false}, // threshold 64
    {4096, 256, 3840, true}, {4096, 256, 3841, false},                       // capped at 256
    {1, 256, 0, true},      {1, 256, 1, false},      {3, 256, 2, true},      // never below 1
  };
  for (auto& r : rows) {
    CAPTURE(r.capacity);
    CAPTURE(r.taken);
    send_credit c{r.max_chunk};
    CHECK_FALSE(c.may_start_chunk()); // nothing granted yet
    c.grant(r.capacity);
    CHECK(c.take(r.taken));
    CHECK(c.may_start_chunk() == r.may_start);
  }
  send_credit c{256};
  c.grant(256);
  CHECK(c.take(256));
  c.grant(10); // later grants do not change the threshold (64)
  CHECK_FALSE(c.may_start_chunk());
  c.grant(54);
  CHECK(c.may_start_chunk());
  // A consumer restored from a checkpoint first grants less than its
  // capacity (it holds restored records): the threshold grows once the
  // producer holds more, so chunks are not small for the rest of the run.
  send_credit restored{256};
  restored.grant(8); // capacity 256, 248 restored records held
  CHECK(restored.may_start_chunk()); // threshold 2 for now
  CHECK(restored.take(8));
  restored.grant(248); // the restored records left
  CHECK(restored.take(193));
  CHECK_FALSE(restored.may_start_chunk()); // threshold 64: 63 left
}

TEST_CASE("receive_credit: grants back what left, flags overruns") {
  receive_credit c{4};
  CHECK(c.initial_grant() == 4);
  CHECK(c.arrived(3));
  CHECK(c.held() == 3);
  CHECK(c.take_grant() == 0);
  c.left(2);
  CHECK(c.take_grant() == 2);
  CHECK(c.take_grant() == 0);
  CHECK(c.arrived(3)); // 1 + 3 = 4: at capacity
  CHECK(c.max_held() == 4);
  CHECK_FALSE(c.arrived(1)); // 5 > 4: the producer overran its credit
}

TEST_CASE("receive_credit: records restored from a checkpoint hold credit; the producer never gets more than capacity") {
  // A table: capacity and min grant, records restored, restored records that
  // leave before the link opens, then the producer's credit after every
  // restored record left (it must be exactly the capacity).
  struct row {
    const char* name;
    uint64_t capacity, min_grant, restored, left_before_open;
  };
  std::vector<row> rows = {
    {"none restored", 8, 1, 0, 0},
    {"some restored, none left early", 8, 1, 3, 0},
    {"some left before the link opened (the call log answered them)", 256, 32, 40, 5},
    {"all left before the link opened", 256, 32, 40, 40},
    {"more restored than the capacity (it shrank)", 4, 1, 6, 0},
    {"more restored than the capacity, some left early", 4, 1, 6, 3},
  };
  for (auto& r : rows) {
    std::string name = r.name;
    CAPTURE(name);
    receive_credit c{r.capacity, r.min_grant};
    c.restored(r.restored);
    c.left(r.left_before_open);
    uint64_t credit = c.initial_grant(); // what the producer holds
    CHECK(credit + c.held() <= std::max(r.capacity, r.restored));
    c.left(r.restored - r.left_before_open);
    credit += c.take_grant();
    // Every restored record left: the producer holds the whole window.
    CHECK(credit == r.capacity);
    // It spends it as fast as it can; records leave one by one: never an
    // overrun, never more than the window.
    for (uint64_t i = 0; i < 3 * r.capacity; ++i) {
      REQUIRE(credit > 0);
      --credit;
      CHECK(c.arrived(1));
      c.left(1);
      credit += c.take_grant();
      CHECK(credit + c.held() <= r.capacity);
    }
    CHECK(c.held() == 0);
  }
}

namespace {

/// A step of an inflight_table table: complete one ticket, then expect these pops.
struct completion_row {
  uint64_t complete;
  std::vector<int> popped;
};

/// Admits 0..3, applies each row, checks the pops after every step.
void check_release_order(output_mode mode, const std::vector<completion_row>& rows) {
  inflight_table<int> t{mode};
  for (int i = 0; i < 4; ++i)
    CHECK(t.admit(i) == static_cast<uint64_t>(i));
  for (auto& r : rows) {
    CAPTURE(r.complete);
    t.complete(r.complete);
    std::vector<int> got;
    int v;
    while (t.pop_ready(v))
      got.push_back(v);
    CHECK(got == r.popped);
  }
  CHECK(t.empty());
}

} // namespace

TEST_CASE("inflight_table: ordered mode releases in arrival order only") {
  check_release_order(output_mode::ordered, {{2, {}}, {0, {0}}, {3, {}}, {1, {1, 2, 3}}});
}

TEST_CASE("inflight_table: unordered mode releases in completion order") {
  check_release_order(output_mode::unordered, {{2, {2}}, {0, {0}}, {3, {3}}, {1, {1}}});
}

TEST_CASE("inflight_table: size counts completed-but-held items; double completion throws") {
  for (auto mode : {output_mode::ordered, output_mode::unordered}) {
    inflight_table<std::string> t{mode};
    auto a = t.admit("a");
    auto b = t.admit("b");
    t.complete(b);
    CHECK(t.size() == 2);
    CHECK(t.at(a) == "a");
    CHECK_THROWS(t.complete(b));
    std::string v;
    if (mode == output_mode::ordered)
      CHECK_FALSE(t.pop_ready(v));
    else
      CHECK(t.pop_ready(v));
  }
}

TEST_CASE("partitioning: keyed routing is stable and spreads keys") {
  CHECK(fnv1a("") == 14695981039346656037ull);
  CHECK(fnv1a("a") == 0xaf63dc4c8601ec8cull); // the published FNV-1a test vector
  std::set<uint32_t> seen;
  for (int k = 0; k < 100; ++k) {
    auto key = "\"user" + std::to_string(k) + "\"";
    auto s = subtask_for_key(key, 4);
    CHECK(s < 4);
    CHECK(s == subtask_for_key(key, 4));
    seen.insert(s);
  }
  CHECK(seen.size() == 4);
  CHECK(subtask_round_robin(0, 3) == 0);
  CHECK(subtask_round_robin(4, 3) == 1);
  CHECK(subtask_for_key("x", 1) == 0);
}

TEST_CASE("record_template: placeholders render deterministically") {
  std::string err;
  auto t = record_template::parse(R"({"id":"${i}","s":"r${i}","c":"${pick:a|b|c}"})", err);
  REQUIRE(t);
  std::string out;
  t->render(42, 7, out);
  CHECK(out.substr(0, 23) == R"({"id":42,"s":"r42","c":)");
  std::set<std::string> picks;
  for (uint64_t i = 0; i < 60; ++i) {
    std::string a;
    std::string b;
    t->render(i, 7, a);
    t->render(i, 7, b);
    CHECK(a == b);
    picks.insert(a.substr(a.rfind(':') + 1));
  }
  CHECK(picks == std::set<std::string>{"\"a\"}", "\"b\"}", "\"c\"}"});
  CHECK_FALSE(record_template::parse(R"({"x":"${nope}"})", err));
  CHECK(err.find("unknown placeholder") != std::string::npos);
  CHECK_FALSE(record_template::parse(R"({"x":"${i")", err));
}

TEST_CASE("json text: quote, unquote and append_member") {
  struct row {
    std::string raw;
    std::string quoted;
  };
  std::vector<row> rows = {{"plain", R"("plain")"},
                           {"a\"b", R"("a\"b")"},
                           {"back\\slash", R"("back\\slash")"},
                           {"line\nbreak\t", R"("line\nbreak\t")"},
                           {std::string{"\x01", 1}, R"("\u0001")"},
                           {"é", "\"é\""}};
  for (auto& r : rows) {
    CAPTURE(r.raw);
    CHECK(json_quote(r.raw) == r.quoted);
    std::string back;
    CHECK(json_unquote(r.quoted, back));
    CHECK(back == r.raw);
  }
  std::string s;
  CHECK(json_unquote(R"("\u00e9\ud83d\ude00")", s));
  CHECK(s == "é😀");
  CHECK_FALSE(json_unquote("42", s));
  CHECK_FALSE(json_unquote(R"("bad\q")", s));

  std::string obj = R"({"a":1})";
  append_member(obj, R"("b":2)");
  CHECK(obj == R"({"a":1,"b":2})");
  std::string empty = "{ }  ";
  append_member(empty, R"("b":2)");
  CHECK(empty == R"({ "b":2})");
}

TEST_CASE("json_token_problem: which bare token a strict parser rejected, and where") {
  struct row {
    const char* json;
    const char* problem; // empty: every bare token is a JSON value
  };
  std::vector<row> rows = {
    {R"({"x":1,"y":[true,false,null,-0.5e-3,0,18446744073709551615,-9223372036854775808]})", ""},
    {R"({"x":1e-400})", ""}, // underflows to 0: a parser reads it
    {R"({"x":1 2})", ""},    // a missing comma is a structural problem
    {R"({"x":"NaN, 1e999 and 01 in a string"})", ""},
    {R"({"x":"unterminated)", ""},
    {R"({"x":NaN})", "at x: NaN is not a JSON number (JSON has no NaN or Infinity)"},
    {R"({"x":-Infinity})", "at x: -Infinity is not a JSON number (JSON has no NaN or Infinity)"},
    {R"({"x":inf})", "at x: inf is not a JSON number (JSON has no NaN or Infinity)"},
    {R"({"x":1.7976931348623157e308,"y":1.8e308})", "at y: the number 1.8e308 is beyond the range of a double"},
    {R"({"n":18446744073709551616})",
     "at n: the integer 18446744073709551616 (20 digits) does not fit in 64 bits; write it as a decimal (1.5e30) or a "
     "string"},
    {R"({"n":-9223372036854775809})", "at n: the integer -9223372036854775809 (19 digits) does not fit in 64 bits"},
    {R"({"a":{"b":[1,{"c":2},[3,+1]]}})", "at a.b[2][1]: +1 is not a valid JSON number"},
    {R"({"a":[1,2],"b\"q":.5})", R"(at b\"q: .5 is not a valid JSON number)"},
    {R"({"x":01})", "at x: 01 is not a valid JSON number"},
    {R"({"x":1.})", "at x: 1. is not a valid JSON number"},
    {R"({"x":-})", "at x: - is not a valid JSON number"},
    {R"({"x":tru})", "at x: \"tru\" is not a JSON value"},
    {"[1,2,\x01]", "at [2]: \"\\x01\" is not a JSON value"},
    {"not json", "\"not\" is not a JSON value"},
    {R"({"x":123456789012345678901234567890123456789012345678901234567890})",
     "at x: the integer 12345678901234567890123456789012... (60 digits)"},
  };
  for (auto& r : rows) {
    CAPTURE(r.json);
    auto got = json_token_problem(r.json);
    if (*r.problem == 0)
      CHECK(got.empty());
    else
      CHECK_MESSAGE(got.rfind(r.problem, 0) == 0, got);
  }
  // Deep nesting: the path is kept for 64 levels, then marked as cut.
  std::string deep(100000, '[');
  deep += "NaN";
  auto got = json_token_problem(deep);
  CHECK(got.rfind("at [0][0]", 0) == 0);
  CHECK(got.find("...: NaN is not a JSON number") != std::string::npos);
  CHECK(got.size() < 400);
  CHECK(printable_excerpt("ab\x01\xff", 10) == "ab\\x01\\xff");
  CHECK(printable_excerpt("abcdef", 3) == "abc...");
}

TEST_CASE("parse_duration: units, decimals and rejects, both sides of each rule") {
  struct row {
    const char* text;
    bool ok;
    int64_t ns;
  };
  std::vector<row> rows = {
    {"5ms", true, 5'000'000},     {"2s", true, 2'000'000'000}, {"1.5s", true, 1'500'000'000},
    {"1m", true, 60'000'000'000}, {"250us", true, 250'000},    {"0ms", true, 0},
    {"7", false, 0},              {"ms", false, 0},            {"-1s", false, 0},
    {"5 parsecs", false, 0},      {"", false, 0},              {"1e3s", false, 0},
  };
  for (auto& r : rows) {
    CAPTURE(r.text);
    std::chrono::nanoseconds d{-1};
    CHECK(parse_duration(r.text, d) == r.ok);
    if (r.ok)
      CHECK(d.count() == r.ns);
  }
}

TEST_CASE("edit_distance") {
  CHECK(edit_distance("parallelism", "paralelism") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("same", "same") == 0);
}

TEST_CASE("stage_condition: which records a conditional stage applies to") {
  using t = stage_condition::test;
  struct row {
    t kind;
    std::vector<std::string> values;
    std::optional<std::string> field; // the record's value (minified JSON); nullopt: absent
    bool applies;
  };
  std::vector<row> rows = {
    {t::always, {}, std::nullopt, true},
    {t::equals, {R"("negative")"}, R"("negative")", true},
    {t::equals, {R"("negative")"}, R"("positive")", false},
    {t::equals, {R"("negative")"}, "negative", false}, // not the string
    {t::equals, {R"("negative")"}, std::nullopt, false},
    {t::equals, {"1"}, "1", true},
    {t::not_equals, {R"("negative")"}, R"("positive")", true},
    {t::not_equals, {R"("negative")"}, std::nullopt, true},
    {t::not_equals, {R"("negative")"}, R"("negative")", false},
    {t::in, {R"("a")", R"("b")"}, R"("b")", true},
    {t::in, {R"("a")", R"("b")"}, R"("c")", false},
    {t::in, {R"("a")"}, std::nullopt, false},
    {t::exists, {}, "0", true},
    {t::exists, {}, "null", false},
    {t::exists, {}, std::nullopt, false},
    {t::missing, {}, std::nullopt, true},
    {t::missing, {}, "null", true},
    {t::missing, {}, R"("x")", false},
  };
  for (auto& r : rows) {
    CAPTURE(static_cast<int>(r.kind));
    CAPTURE(r.field.value_or("(absent)"));
    stage_condition c;
    c.kind = r.kind;
    c.field = "f";
    c.values = r.values;
    std::optional<std::string_view> v;
    if (r.field)
      v = *r.field;
    CHECK(c.matches(v) == r.applies);
  }
}
