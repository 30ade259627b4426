/// Fuzz target: checkpoint decoding (runtime/snapshot_codec.hpp):
/// `decode_source_position`, `decode_held`, `decode_outputs`.
///
/// Input: one byte that picks the decoder ('p' source position, 'h' held
/// records, 'o' outputs; any other byte modulo 3 in that order), then the
/// snapshot's bytes.
/// Invariants: a decode that fails says why; one that succeeds re-encodes to
/// the same bytes, except that numbers written with more varint bytes than
/// needed (which the decoder accepts) re-encode shorter, never longer; the
/// re-encoded bytes decode to the same values.

#include "fuzz_support.hpp"

#include "runtime/snapshot_codec.hpp"

namespace {

using namespace sinfer;

/// The re-encoding of a decoded input is the input, or shorter (an
/// over-long varint made minimal) and never the same length but different.
void check_reencoded(std::string_view in, const std::string& out) {
  FUZZ_CHECK(out.size() <= in.size());
  if (out.size() == in.size())
    FUZZ_CHECK(out == in);
}

bool same(const held_snapshot& a, const held_snapshot& b) {
  return a.rec.id.source == b.rec.id.source && a.rec.id.partition == b.rec.id.partition
         && a.rec.id.offset == b.rec.id.offset && a.rec.json == b.rec.json && a.rec.error == b.rec.error
         && a.rec.born_ns == b.rec.born_ns && a.done == b.done && a.link == b.link;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto which = data[0] == 'p' ? 0 : data[0] == 'h' ? 1 : data[0] == 'o' ? 2 : data[0] % 3;
  auto bytes = fuzz::as_text(data + 1, size - 1);
  std::string error;
  if (which == 0) {
    source_position p;
    if (!decode_source_position(bytes, p, error)) {
      FUZZ_CHECK(!error.empty());
      return 0;
    }
    auto out = encode_source_position(p);
    check_reencoded(bytes, out);
    source_position q;
    FUZZ_CHECK(decode_source_position(out, q, error));
    FUZZ_CHECK(p.bytes == q.bytes && p.lines == q.lines && p.generated == q.generated && p.routed == q.routed);
  } else if (which == 1) {
    std::vector<held_snapshot> held;
    if (!decode_held(bytes, held, error)) {
      FUZZ_CHECK(!error.empty());
      return 0;
    }
    auto out = encode_held(held);
    check_reencoded(bytes, out);
    std::vector<held_snapshot> again;
    FUZZ_CHECK(decode_held(out, again, error));
    FUZZ_CHECK(again.size() == held.size());
    for (size_t i = 0; i < held.size(); ++i)
      FUZZ_CHECK(same(held[i], again[i]));
  } else {
    std::vector<std::string> values;
    if (!decode_outputs(bytes, values, error)) {
      FUZZ_CHECK(!error.empty());
      return 0;
    }
    auto out = encode_outputs(values);
    check_reencoded(bytes, out);
    std::vector<std::string> again;
    FUZZ_CHECK(decode_outputs(out, again, error));
    FUZZ_CHECK(again == values);
  }
  return 0;
}
