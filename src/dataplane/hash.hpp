// Hashing helpers shared by the dataplane's tables (flows, fragments, identity).
// Run side: constexpr/noexcept; random_seed() is control side (it reads std::random_device).
#pragma once

#include <cstdint>
#include <random>

namespace tagwall::dataplane {

inline constexpr uint64_t kGoldenRatio64 = 0x9e3779b97f4a7c15ULL;

// murmur3's 64-bit finalizer: every input bit reaches every output bit.
constexpr uint64_t mix64(uint64_t x) noexcept {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

// A non-zero seed for a table's hash, so that an attacker cannot aim keys at one bucket offline.
inline uint64_t random_seed() {
    std::random_device rd;
    const uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return s != 0 ? s : kGoldenRatio64;
}

}  // namespace tagwall::dataplane
