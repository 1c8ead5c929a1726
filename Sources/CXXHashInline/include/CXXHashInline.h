// XXH3-64 compiled into this target from the header-only form of xxHash (XXH_INLINE_ALL), so nothing that hashes
// links libxxhash: the emitter library and everything above the base module need no C library at run time.
// Building needs xxhash.h (Debian: libxxhash-dev).
#pragma once
#include <stddef.h>
#include <stdint.h>

/// XXH3_64bits(data, length).
uint64_t grid_xxh3_64(const void *data, size_t length);

/// XXH3_64bits_withSeed(data, length, seed).
uint64_t grid_xxh3_64_seeded(const void *data, size_t length, uint64_t seed);
