// The Internet checksum (RFC 1071), for the frames the appliance builds (reject answers) and the ones
// the benchmarks synthesise.  Run side: constexpr-friendly, noexcept, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagwall::dataplane {

// The running one's-complement sum of `data` as big-endian 16-bit words (an odd last byte is the high
// half of a word), added to `acc`.  Sums of pseudo headers and of parts of a packet add up.
inline uint64_t internet_sum(const uint8_t* data, size_t length, uint64_t acc = 0) noexcept {
    size_t i = 0;
    for (; i + 1 < length; i += 2) acc += uint32_t{data[i]} << 8 | data[i + 1];
    if (i < length) acc += uint32_t{data[i]} << 8;
    return acc;
}

// The checksum field's value: the folded, complemented sum of `data` started from `acc`.
inline uint16_t internet_checksum(const uint8_t* data, size_t length, uint64_t acc = 0) noexcept {
    acc = internet_sum(data, length, acc);
    while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
    return static_cast<uint16_t>(~acc & 0xFFFF);
}

}  // namespace tagwall::dataplane
