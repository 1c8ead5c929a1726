// The header-only xxHash: every function is static inline in this translation unit; no libxxhash symbol is used.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "CXXHashInline.h"

uint64_t grid_xxh3_64(const void *data, size_t length) { return XXH3_64bits(data, length); }

uint64_t grid_xxh3_64_seeded(const void *data, size_t length, uint64_t seed) {
    return XXH3_64bits_withSeed(data, length, seed);
}
