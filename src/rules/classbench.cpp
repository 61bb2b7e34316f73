// ClassBench reader (build side): whole file in memory, one pass, std::from_chars for every number.
#include "rules/classbench.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace tagwall::rules {

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    const auto size = in.tellg();
    std::string text(static_cast<size_t>(size), '\0');
    in.seekg(0);
    if (!in.read(text.data(), size)) throw std::runtime_error(fmt::format("{}: read error", path));
    return text;
}

// A cursor over one line; every failure names the file and line.
class LineParser {
public:
    LineParser(std::string_view line, std::string_view file, size_t line_no)
        : p_(line.data()), end_(line.data() + line.size()), file_(file), line_no_(line_no) {}

    [[noreturn]] void fail(std::string_view message) const {
        throw std::runtime_error(fmt::format("{}:{}: {}", file_, line_no_, message));
    }

    void skip_blanks() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t')) ++p_;
    }
    bool at_end() noexcept {
        skip_blanks();
        return p_ == end_;
    }
    void expect(char c, std::string_view what) {
        skip_blanks();
        if (p_ == end_ || *p_ != c) fail(fmt::format("expected '{}' {}", c, what));
        ++p_;
    }

    // An unsigned number (decimal, or hex after a mandatory "0x" when hex) no larger than max.
    uint32_t number(uint32_t max, std::string_view what, bool hex = false) {
        skip_blanks();
        if (hex) {
            if (end_ - p_ < 2 || p_[0] != '0' || (p_[1] != 'x' && p_[1] != 'X')) fail(fmt::format("expected 0x... {}", what));
            p_ += 2;
        }
        uint64_t value = 0;
        const auto [next, ec] = std::from_chars(p_, end_, value, hex ? 16 : 10);
        if (ec == std::errc::invalid_argument) fail(fmt::format("expected a number {}", what));
        if (ec == std::errc::result_out_of_range || value > max)
            fail(fmt::format("{} out of range (at most {})", what, max));
        p_ = next;
        return static_cast<uint32_t>(value);
    }

    // a.b.c.d/len as a range.
    FieldRange prefix(std::string_view what) {
        uint32_t addr = 0;
        for (int octet = 0; octet < 4; ++octet) {
            if (octet > 0) {
                if (p_ == end_ || *p_ != '.') fail(fmt::format("expected '.' in the {} address", what));
                ++p_;
            }
            if (p_ == end_ || *p_ < '0' || *p_ > '9') fail(fmt::format("expected the {} address (a.b.c.d/len)", what));
            addr = addr << 8 | number(255, fmt::format("{} address octet", what));
        }
        if (p_ == end_ || *p_ != '/') fail(fmt::format("expected '/LEN' after the {} address", what));
        ++p_;
        const uint32_t len = number(32, fmt::format("{} prefix length", what));
        const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        return {addr & mask, (addr & mask) | ~mask};
    }

    // lo : hi
    FieldRange port_range(std::string_view what) {
        const uint32_t lo = number(0xFFFF, fmt::format("{} low port", what));
        expect(':', fmt::format("between the {} ports", what));
        const uint32_t hi = number(0xFFFF, fmt::format("{} high port", what));
        if (lo > hi) fail(fmt::format("inverted {} port range {} : {}", what, lo, hi));
        return {lo, hi};
    }

    // 0xPP/0xMM: mask 0xFF is exact, 0x00 is any.
    FieldRange protocol() {
        const uint32_t value = number(0xFF, "protocol", true);
        expect('/', "between protocol and mask");
        const uint32_t mask = number(0xFF, "protocol mask", true);
        if (mask == 0xFF) return {value, value};
        if (mask == 0) return {0, 0xFF};
        fail(fmt::format("unsupported protocol mask 0x{:02X} (0xFF exact or 0x00 any)", mask));
    }

    bool starts_with(char c) noexcept {
        skip_blanks();
        if (p_ == end_ || *p_ != c) return false;
        ++p_;
        return true;
    }

private:
    const char* p_;
    const char* end_;
    std::string_view file_;
    size_t line_no_;
};

// Calls fn(line, line_no) for every non-blank line; '\r' endings are tolerated.
template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
    size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        fn(line, line_no);
    }
}

}  // namespace

std::vector<FieldRule> parse_classbench_rules(std::string_view text, std::string_view name) {
    std::vector<FieldRule> rules;
    rules.reserve(text.size() / 64);
    for_each_line(text, [&](std::string_view line, size_t line_no) {
        LineParser in(line, name, line_no);
        if (!in.starts_with('@')) in.fail("expected '@' at the start of a ClassBench rule");
        FieldRule r;
        r.field[kFieldSrc] = in.prefix("source");
        in.skip_blanks();
        r.field[kFieldDst] = in.prefix("destination");
        r.field[kFieldSport] = in.port_range("source");
        r.field[kFieldDport] = in.port_range("destination");
        r.field[kFieldProto] = in.protocol();
        // The optional FLAGS/MASK column (and anything after it) is not classified on.
        r.priority = static_cast<uint32_t>(rules.size());
        r.id = static_cast<int32_t>(rules.size());
        rules.push_back(r);
    });
    return rules;
}

std::vector<FieldKey> parse_classbench_trace(std::string_view text, std::string_view name) {
    std::vector<FieldKey> keys;
    keys.reserve(text.size() / 40);
    for_each_line(text, [&](std::string_view line, size_t line_no) {
        LineParser in(line, name, line_no);
        FieldKey k;
        k[kFieldSrc] = in.number(0xFFFFFFFFu, "source address");
        k[kFieldDst] = in.number(0xFFFFFFFFu, "destination address");
        k[kFieldSport] = in.number(0xFFFF, "source port");
        k[kFieldDport] = in.number(0xFFFF, "destination port");
        k[kFieldProto] = in.number(0xFF, "protocol");
        // FLAGS and FILTER (the rule the header was drawn from) follow; neither is needed.
        keys.push_back(k);
    });
    return keys;
}

std::vector<FieldRule> read_classbench_rules(const std::string& path) {
    return parse_classbench_rules(read_file(path), path);
}

std::vector<FieldKey> read_classbench_trace(const std::string& path) {
    return parse_classbench_trace(read_file(path), path);
}

}  // namespace tagwall::rules
