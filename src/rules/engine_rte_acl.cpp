// rte_acl engine: build side (constructor: rules -> rte_acl context) and run side (classify_burst).
#include "rules/engine_rte_acl.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

namespace tagwall::rules {

namespace {

// What rte_acl reads for one key, in network byte order.  The protocol is the mandatory one-byte first
// field; then three four-byte input groups: source, destination, and both ports together.
struct AclInput {
    uint8_t proto;
    uint8_t pad[3];
    uint32_t src;
    uint32_t dst;
    uint16_t sport;
    uint16_t dport;
};
static_assert(sizeof(AclInput) == 16);
static_assert(offsetof(AclInput, src) == 4 && offsetof(AclInput, dst) == 8);
static_assert(offsetof(AclInput, sport) == 12 && offsetof(AclInput, dport) == 14);

// rte_acl field indexes (the order of rte_acl_rule::field[]), distinct from our FieldIndex.
enum AclField : uint8_t { kAclProto = 0, kAclSrc = 1, kAclDst = 2, kAclSport = 3, kAclDport = 4 };
constexpr uint32_t kAclFieldCount = 5;

RTE_ACL_RULE_DEF(AclRule, kAclFieldCount);

std::atomic<uint32_t> g_context_serial{0};  // unique context names; relaxed: only uniqueness matters

struct FieldTypes {
    bool src_is_mask = true, dst_is_mask = true, proto_is_bitmask = true;
};

bool is_prefix(const FieldRange& r) noexcept {
    const uint64_t size = uint64_t{r.hi} - r.lo + 1;  // 1 .. 2^32
    return std::has_single_bit(size) && (uint64_t{r.lo} & (size - 1)) == 0;
}

uint32_t prefix_length(const FieldRange& r) noexcept {
    const uint64_t size = uint64_t{r.hi} - r.lo + 1;
    return 32 - static_cast<uint32_t>(std::countr_zero(size));
}

bool is_exact_or_any(const FieldRange& r) noexcept { return r.lo == r.hi || (r.lo == 0 && r.hi == kFieldMax[kFieldProto]); }

void check_ranges(const FieldRule& rule) {
    for (size_t f = 0; f < kFieldCount; ++f) {
        const FieldRange& r = rule.field[f];
        if (r.lo > r.hi || r.hi > kFieldMax[f])
            throw std::invalid_argument(fmt::format("rte_acl: rule with priority {} has field {} range [{}, {}] "
                                                    "outside [0, {}] or inverted",
                                                    rule.priority, f, r.lo, r.hi, kFieldMax[f]));
    }
}

FieldTypes choose_field_types(std::span<const FieldRule> rules) {
    FieldTypes t;
    for (const FieldRule& r : rules) {
        check_ranges(r);
        t.src_is_mask = t.src_is_mask && is_prefix(r.field[kFieldSrc]);
        t.dst_is_mask = t.dst_is_mask && is_prefix(r.field[kFieldDst]);
        t.proto_is_bitmask = t.proto_is_bitmask && is_exact_or_any(r.field[kFieldProto]);
    }
    return t;
}

rte_acl_config make_config(const FieldTypes& t) {
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    cfg.num_fields = kAclFieldCount;
    cfg.max_size = 0;  // no limit: let rte_acl pick its usual trade-off
    const auto mask_or_range = [](bool mask) -> uint8_t { return mask ? RTE_ACL_FIELD_TYPE_MASK : RTE_ACL_FIELD_TYPE_RANGE; };
    const uint8_t proto_type = t.proto_is_bitmask ? RTE_ACL_FIELD_TYPE_BITMASK : RTE_ACL_FIELD_TYPE_RANGE;
    cfg.defs[0] = {proto_type, sizeof(uint8_t), kAclProto, 0, offsetof(AclInput, proto)};
    cfg.defs[1] = {mask_or_range(t.src_is_mask), sizeof(uint32_t), kAclSrc, 1, offsetof(AclInput, src)};
    cfg.defs[2] = {mask_or_range(t.dst_is_mask), sizeof(uint32_t), kAclDst, 2, offsetof(AclInput, dst)};
    cfg.defs[3] = {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kAclSport, 3, offsetof(AclInput, sport)};
    cfg.defs[4] = {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kAclDport, 3, offsetof(AclInput, dport)};
    return cfg;
}

rte_acl_field address_field(const FieldRange& r, bool as_mask) noexcept {
    rte_acl_field f{};
    f.value.u32 = r.lo;
    f.mask_range.u32 = as_mask ? prefix_length(r) : r.hi;
    return f;
}

AclRule make_acl_rule(const FieldRule& rule, uint32_t rank, const FieldTypes& t) noexcept {
    AclRule a{};
    a.data.category_mask = 1;
    a.data.priority = static_cast<int32_t>(RTE_ACL_MAX_PRIORITY - rank);
    a.data.userdata = rank + 1;
    const FieldRange& proto = rule.field[kFieldProto];
    if (t.proto_is_bitmask) {
        const bool exact = proto.lo == proto.hi;
        a.field[kAclProto].value.u8 = exact ? static_cast<uint8_t>(proto.lo) : 0;
        a.field[kAclProto].mask_range.u8 = exact ? 0xFF : 0;
    } else {
        a.field[kAclProto].value.u8 = static_cast<uint8_t>(proto.lo);
        a.field[kAclProto].mask_range.u8 = static_cast<uint8_t>(proto.hi);
    }
    a.field[kAclSrc] = address_field(rule.field[kFieldSrc], t.src_is_mask);
    a.field[kAclDst] = address_field(rule.field[kFieldDst], t.dst_is_mask);
    a.field[kAclSport].value.u16 = static_cast<uint16_t>(rule.field[kFieldSport].lo);
    a.field[kAclSport].mask_range.u16 = static_cast<uint16_t>(rule.field[kFieldSport].hi);
    a.field[kAclDport].value.u16 = static_cast<uint16_t>(rule.field[kFieldDport].lo);
    a.field[kAclDport].mask_range.u16 = static_cast<uint16_t>(rule.field[kFieldDport].hi);
    return a;
}

// Bytes handed out by rte_malloc on every socket's heap.
size_t rte_heap_allocated() noexcept {
    size_t total = 0;
    const unsigned sockets = rte_socket_count();
    for (unsigned i = 0; i < sockets; ++i) {
        rte_malloc_socket_stats s{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0) total += s.heap_allocsz_bytes;
    }
    return total;
}

// The algorithm rte_acl_create picks by default is the first of this list that the CPU and the EAL's
// max SIMD bitwidth allow (DPDK's acl_get_best_alg uses the same order); rte_acl_ctx is opaque and has
// no getter, so we ask for each in turn and keep the first it accepts, which is that same choice.
std::string_view select_best_algorithm(rte_acl_ctx* ctx) {
    static constexpr std::pair<enum rte_acl_classify_alg, std::string_view> kPreference[] = {
        {RTE_ACL_CLASSIFY_AVX512X32, "avx512x32"}, {RTE_ACL_CLASSIFY_AVX512X16, "avx512x16"},
        {RTE_ACL_CLASSIFY_AVX2, "avx2"},           {RTE_ACL_CLASSIFY_SSE, "sse"},
        {RTE_ACL_CLASSIFY_NEON, "neon"},           {RTE_ACL_CLASSIFY_ALTIVEC, "altivec"},
        {RTE_ACL_CLASSIFY_SCALAR, "scalar"},
    };
    for (const auto& [alg, name] : kPreference)
        if (rte_acl_set_ctx_classify(ctx, alg) == 0) return name;
    throw std::runtime_error("rte_acl: no classify algorithm is usable on this CPU");
}

std::runtime_error acl_error(std::string_view what, int err) {
    return std::runtime_error(fmt::format("rte_acl: {}: {}", what, rte_strerror(err)));
}

std::string_view type_name(bool special, std::string_view special_name) { return special ? special_name : "range"; }

}  // namespace

RteAclEngine::RteAclEngine(std::span<const FieldRule> rules) {
    if (rte_lcore_count() == 0) throw std::runtime_error("rte_acl: the DPDK EAL is not initialised");
    if (rules.size() > RTE_ACL_MAX_PRIORITY - RTE_ACL_MIN_PRIORITY)
        throw std::invalid_argument(fmt::format("rte_acl: {} rules is more than rte_acl can rank", rules.size()));
    const FieldTypes types = choose_field_types(rules);
    layout_ = fmt::format("proto {}, src {}, dst {}, ports range", type_name(types.proto_is_bitmask, "bitmask"),
                          type_name(types.src_is_mask, "mask"), type_name(types.dst_is_mask, "mask"));
    if (rules.empty()) return;  // rte_acl cannot build an empty context; every key misses

    // Rank by priority (stable: equal priorities keep input order, as the linear engine does).
    std::vector<uint32_t> order(rules.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return rules[a].priority < rules[b].priority; });
    std::vector<AclRule> acl_rules;
    acl_rules.reserve(rules.size());
    ids_.reserve(rules.size());
    for (uint32_t rank = 0; rank < order.size(); ++rank) {
        acl_rules.push_back(make_acl_rule(rules[order[rank]], rank, types));
        ids_.push_back(rules[order[rank]].id);
    }

    const size_t heap_before = rte_heap_allocated();
    const std::string ctx_name = fmt::format("tagwall-acl-{}", g_context_serial.fetch_add(1, std::memory_order_relaxed));
    rte_acl_param param{};
    param.name = ctx_name.c_str();
    param.socket_id = SOCKET_ID_ANY;
    param.rule_size = RTE_ACL_RULE_SZ(kAclFieldCount);
    param.max_rule_num = static_cast<uint32_t>(rules.size());
    std::unique_ptr<rte_acl_ctx, decltype(&rte_acl_free)> ctx(rte_acl_create(&param), &rte_acl_free);
    if (!ctx) throw acl_error("create", rte_errno);

    const auto* as_generic = reinterpret_cast<const rte_acl_rule*>(acl_rules.data());
    if (const int rc = rte_acl_add_rules(ctx.get(), as_generic, static_cast<uint32_t>(acl_rules.size())); rc != 0)
        throw acl_error("add_rules", -rc);
    const rte_acl_config cfg = make_config(types);
    if (const int rc = rte_acl_build(ctx.get(), &cfg); rc != 0) throw acl_error("build", -rc);
    algorithm_ = select_best_algorithm(ctx.get());
    const size_t heap_after = rte_heap_allocated();
    memory_bytes_ = heap_after > heap_before ? heap_after - heap_before : 0;
    ctx_ = ctx.release();
}

RteAclEngine::~RteAclEngine() { rte_acl_free(ctx_); }

void RteAclEngine::classify_burst(std::span<const FieldKey> keys, std::span<int32_t> out) const noexcept {
    if (ctx_ == nullptr) {
        std::fill_n(out.begin(), keys.size(), kNoMatch);
        return;
    }
    alignas(64) AclInput input[kChunk];
    const uint8_t* data[kChunk];
    uint32_t results[kChunk];
    for (size_t base = 0; base < keys.size(); base += kChunk) {
        const size_t n = std::min(kChunk, keys.size() - base);
        for (size_t i = 0; i < n; ++i) {
            const FieldKey& k = keys[base + i];
            input[i].proto = static_cast<uint8_t>(k[kFieldProto]);
            input[i].src = rte_cpu_to_be_32(k[kFieldSrc]);
            input[i].dst = rte_cpu_to_be_32(k[kFieldDst]);
            input[i].sport = rte_cpu_to_be_16(static_cast<uint16_t>(k[kFieldSport]));
            input[i].dport = rte_cpu_to_be_16(static_cast<uint16_t>(k[kFieldDport]));
            data[i] = reinterpret_cast<const uint8_t*>(&input[i]);
        }
        if (rte_acl_classify(ctx_, data, results, static_cast<uint32_t>(n), 1) != 0) {
            std::fill_n(out.begin() + static_cast<ptrdiff_t>(base), n, kNoMatch);  // cannot happen: arguments are valid
            continue;
        }
        for (size_t i = 0; i < n; ++i) out[base + i] = results[i] == 0 ? kNoMatch : ids_[results[i] - 1];
    }
}

ClassifierStats RteAclEngine::stats() const {
    return {memory_bytes_, fmt::format("{} rules; classify algorithm {}; fields: {}; memory = rte_malloc heap growth "
                                       "over create+build",
                                       ids_.size(), algorithm_, layout_)};
}

}  // namespace tagwall::rules
