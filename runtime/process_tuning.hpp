#pragma once
/// Process-wide settings for programs that run jobs (the `sinfer` command,
/// benchmarks). Library code never calls this: it changes the whole process.

namespace sinfer {

/// Keeps glibc's allocator from handing memory back to the kernel after
/// every large free and faulting it in again: records move between actor
/// threads in chunks of up to a few hundred kB, and with the default 128 kB
/// trim threshold each thread's arena shrank and regrew (madvise and page
/// faults were ~10% of a noop pipeline's time). Memory stays bounded by
/// credit either way; RSS grows by at most the thresholds per arena.
void tune_allocator();

} // namespace sinfer
