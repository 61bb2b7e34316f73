// Switch mode's MAC table: see mac_table.hpp.
#include "dataplane/mac_table.hpp"

#include <bit>

#include "dataplane/hash.hpp"

namespace tagwall::dataplane {

MacTable::MacTable(const MacTableConfig& config)
    : aging_(config.aging_ns), seed_(config.seed != 0 ? config.seed : random_seed()) {
    const size_t cap = std::bit_ceil(static_cast<size_t>(config.capacity < kProbe ? kProbe : config.capacity));
    slots_ = std::make_unique<Slot[]>(cap);
    mask_ = cap - 1;
}

uint64_t MacTable::key_of(uint16_t vlan, const Mac& m) noexcept {
    uint64_t k = uint64_t{vlan} << 48;
    for (size_t i = 0; i < 6; ++i) k |= uint64_t{m[i]} << (40 - 8 * i);
    return k;
}

size_t MacTable::home(uint64_t key) const noexcept { return static_cast<size_t>(mix64(key ^ seed_)) & mask_; }

void MacTable::learn(uint16_t vlan, const Mac& mac, uint8_t port, uint64_t now) noexcept {
    const uint64_t key = key_of(vlan, mac);
    const size_t h = home(key);
    Slot* victim = nullptr;
    for (size_t i = 0; i < kProbe; ++i) {
        Slot& s = slots_[(h + i) & mask_];
        if (s.key == key) {
            if (static_cast<uint8_t>(s.seen_port) != port) ++moves_;
            s.seen_port = now << 8 | port;
            return;
        }
        if (s.key == UINT64_MAX) {  // slots are never emptied, so the key is not further down
            victim = &s;
            break;
        }
        if (victim == nullptr || (s.seen_port >> 8) < (victim->seen_port >> 8)) victim = &s;
    }
    victim->key = key;
    victim->seen_port = now << 8 | port;
}

uint8_t MacTable::port_of(uint16_t vlan, const Mac& mac, uint64_t now) const noexcept {
    const uint64_t key = key_of(vlan, mac);
    const size_t h = home(key);
    for (size_t i = 0; i < kProbe; ++i) {
        const Slot& s = slots_[(h + i) & mask_];
        if (s.key == key) {
            const uint64_t seen = s.seen_port >> 8;
            if (now > seen && now - seen >= aging_) return kUnknown;
            return static_cast<uint8_t>(s.seen_port);
        }
        if (s.key == UINT64_MAX) return kUnknown;
    }
    return kUnknown;
}

size_t MacTable::size(uint64_t now) const noexcept {
    size_t n = 0;
    for (size_t i = 0; i <= mask_; ++i) {
        const Slot& s = slots_[i];
        if (s.key == UINT64_MAX) continue;
        const uint64_t seen = s.seen_port >> 8;
        if (!(now > seen && now - seen >= aging_)) ++n;
    }
    return n;
}

}  // namespace tagwall::dataplane
