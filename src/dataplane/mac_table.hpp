// The MAC table of switch mode (SPEC §5: tagwall as the VLAN-aware L2 switch of its ports).
//
// Concurrency contract: one MacTable per worker, inside its Pipeline.  The constructor runs on the
// control thread before the worker starts and allocates everything; learn() and port_of() are run side
// for the owning worker only: noexcept, no allocation, no locks.  With several workers each learns on
// its own (a frame the worker has not yet seen an answer for is flooded within its segment, exactly as
// an unlearned switch does), so no table is shared.
//
// Design: (VLAN, MAC) -> (port, last seen), open addressing in a power-of-two array of 16-byte slots,
// probed linearly at most kProbe slots.  A learn that finds its key updates it (a station that moves
// moves); one that finds no room takes the stalest slot of its probe window.  Entries older than
// `aging` are misses (802.1D's default is 300 s).  The hash is keyed by a random seed so that a sender
// cannot aim many MACs at one window.
//
// What may be learned where is the Pipeline's decision (pipeline.hpp): an endpoint's bound MAC only on
// a workload port that SpoofGuard let it through, any other unicast MAC only on an uplink.  The table
// itself just stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/packet.hpp"

namespace tagwall::dataplane {

struct MacTableConfig {
    uint32_t capacity = 4096;                       // slots (rounded up to a power of two)
    uint64_t aging_ns = 300ull * 1'000'000'000ull;  // an entry not refreshed for this long is forgotten
    uint64_t seed = 0;                              // 0 draws one
};

class MacTable {
public:
    static constexpr uint8_t kUnknown = 0xFF;
    static constexpr size_t kProbe = 8;

    explicit MacTable(const MacTableConfig& config = {});

    // --- the owning worker ---
    void learn(uint16_t vlan, const Mac& mac, uint8_t port, uint64_t now) noexcept;
    // The port `mac` was last seen on in `vlan`, or kUnknown (never seen, or aged out).
    uint8_t port_of(uint16_t vlan, const Mac& mac, uint64_t now) const noexcept;

    size_t size(uint64_t now) const noexcept;  // live entries (a scan: tests and stats only)
    size_t capacity() const noexcept { return mask_ + 1; }
    uint64_t moves() const noexcept { return moves_; }  // a known MAC seen on another port

private:
    struct Slot {
        uint64_t key = UINT64_MAX;  // vlan << 48 | mac; UINT64_MAX = empty (a VLAN never reaches 0xFFFF)
        uint64_t seen_port = 0;     // last seen << 8 | port
    };
    static uint64_t key_of(uint16_t vlan, const Mac& mac) noexcept;
    size_t home(uint64_t key) const noexcept;

    std::unique_ptr<Slot[]> slots_;
    size_t mask_ = 0;
    uint64_t aging_ = 0;
    uint64_t seed_ = 0;
    uint64_t moves_ = 0;
};

inline bool is_group_mac(const Mac& m) noexcept { return (m[0] & 1u) != 0; }

}  // namespace tagwall::dataplane
