// A small dynamic bitset for group and identity-class sets.
//
// Build side creates them; the run side only calls the const, noexcept queries.  std::vector<bool> has
// no word-wise and/andnot, and std::bitset needs its size at compile time; this is the few lines between.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tagwall::rules {

class DynBitset {
public:
    DynBitset() = default;
    explicit DynBitset(size_t bits, bool value = false)
        : words_((bits + 63) / 64, value ? ~uint64_t{0} : 0), bits_(bits) {
        trim();
    }

    size_t size() const noexcept { return bits_; }
    // Grows (new bits clear) or shrinks the set.
    void resize(size_t bits) {
        words_.resize((bits + 63) / 64, 0);
        bits_ = bits;
        trim();
    }
    bool test(size_t i) const noexcept { return i < bits_ && (words_[i / 64] >> (i % 64)) & 1u; }
    // Bits past size() read as 0 (test) and stay 0 (reset is a no-op there); set() needs i < size().
    void set(size_t i) noexcept {
        assert(i < bits_);
        words_[i / 64] |= uint64_t{1} << (i % 64);
    }
    void reset(size_t i) noexcept {
        if (i < bits_) words_[i / 64] &= ~(uint64_t{1} << (i % 64));
    }

    bool none() const noexcept {
        for (auto w : words_)
            if (w) return false;
        return true;
    }
    bool any() const noexcept { return !none(); }
    size_t count() const noexcept {
        size_t n = 0;
        for (auto w : words_) n += static_cast<size_t>(std::popcount(w));
        return n;
    }
    bool intersects(const DynBitset& o) const noexcept {
        for (size_t i = 0; i < words_.size() && i < o.words_.size(); ++i)
            if (words_[i] & o.words_[i]) return true;
        return false;
    }
    // True when every bit of this is also in o.
    bool subset_of(const DynBitset& o) const noexcept {
        for (size_t i = 0; i < words_.size(); ++i)
            if (words_[i] & ~(i < o.words_.size() ? o.words_[i] : 0)) return false;
        return true;
    }
    DynBitset operator&(const DynBitset& o) const {
        DynBitset r = *this;
        for (size_t i = 0; i < r.words_.size(); ++i) r.words_[i] &= i < o.words_.size() ? o.words_[i] : 0;
        return r;
    }
    DynBitset operator|(const DynBitset& o) const {
        DynBitset r = *this;
        for (size_t i = 0; i < r.words_.size() && i < o.words_.size(); ++i) r.words_[i] |= o.words_[i];
        return r;
    }
    DynBitset minus(const DynBitset& o) const {
        DynBitset r = *this;
        for (size_t i = 0; i < r.words_.size() && i < o.words_.size(); ++i) r.words_[i] &= ~o.words_[i];
        return r;
    }
    // Index of the first set bit at or after i, or size() when none.
    size_t next(size_t i) const noexcept {
        while (i < bits_) {
            const uint64_t w = words_[i / 64] >> (i % 64);
            if (w) return i + static_cast<size_t>(std::countr_zero(w));
            i = (i / 64 + 1) * 64;
        }
        return bits_;
    }
    friend bool operator==(const DynBitset&, const DynBitset&) = default;
    friend auto operator<=>(const DynBitset& a, const DynBitset& b) { return a.words_ <=> b.words_; }

private:
    void trim() noexcept {
        if (bits_ % 64 && !words_.empty()) words_.back() &= (uint64_t{1} << (bits_ % 64)) - 1;
    }
    std::vector<uint64_t> words_;
    size_t bits_ = 0;
};

}  // namespace tagwall::rules
