// Arrays for the dataplane's big tables (flows, buckets), in transparent huge pages where the kernel
// gives them.
//
// Control side: make_huge_array() allocates (mmap, rounded up to 2 MB and 2 MB-aligned, with
// madvise(MADV_HUGEPAGE) so that a kernel in THP "madvise" mode backs it with 2 MB pages), and value-
// initialises every element.  A table that a worker probes at random costs a TLB miss per probe in 4 KB
// pages once it outgrows the TLB's reach (1536 entries x 4 KB = 6 MB); in 2 MB pages the same TLB
// covers 3 GB.  When mmap fails the array comes from operator new instead: slower, never wrong.
// Elements must be trivially destructible (nothing is run at release).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace tagwall::dataplane {

template <class T>
struct HugeArrayDeleter {
    size_t mapped_bytes = 0;  // 0: the array came from operator new[]
    void operator()(T* p) const noexcept {
        if (p == nullptr) return;
        if (mapped_bytes != 0) munmap(static_cast<void*>(p), mapped_bytes);
        else ::operator delete[](static_cast<void*>(p), std::align_val_t{alignof(T)});
    }
};

template <class T>
using HugeArray = std::unique_ptr<T[], HugeArrayDeleter<T>>;

template <class T>
HugeArray<T> make_huge_array(size_t n) {
    static_assert(std::is_trivially_destructible_v<T>, "nothing is destroyed at release");
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = n * sizeof(T);
    const size_t mapped = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = MAP_FAILED;
    if (mapped != 0) {
        // Over-map by one huge page to align the start on 2 MB, then trim both ends.
        void* raw = mmap(nullptr, mapped + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw != MAP_FAILED) {
            auto* base = static_cast<unsigned char*>(raw);
            const size_t misalign = reinterpret_cast<uintptr_t>(base) % kHuge;
            const size_t head = misalign == 0 ? 0 : kHuge - misalign;
            if (head != 0) munmap(base, head);
            if (kHuge - head != 0) munmap(base + head + mapped, kHuge - head);
            p = base + head;
            madvise(p, mapped, MADV_HUGEPAGE);  // a hint: ignored where THP is off
        }
    }
    if (p == MAP_FAILED) {
        void* q = ::operator new[](bytes == 0 ? 1 : bytes, std::align_val_t{alignof(T)});
        for (size_t i = 0; i < n; ++i) new (static_cast<T*>(q) + i) T();
        return HugeArray<T>(static_cast<T*>(q), HugeArrayDeleter<T>{0});
    }
    for (size_t i = 0; i < n; ++i) new (static_cast<T*>(p) + i) T();
    return HugeArray<T>(static_cast<T*>(p), HugeArrayDeleter<T>{mapped});
}

}  // namespace tagwall::dataplane
