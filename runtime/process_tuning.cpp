#include "runtime/process_tuning.hpp"

#include <malloc.h>

namespace sinfer {

void tune_allocator() {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
}

} // namespace sinfer
