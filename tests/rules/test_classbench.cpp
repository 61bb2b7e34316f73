// The ClassBench reader: prefixes become ranges, the protocol is exact or any, file order is priority,
// and every malformed line is reported as FILE:LINE: message.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "rules/classbench.hpp"

using namespace tagwall::rules;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

}  // namespace

TEST_CASE("ClassBench rules: prefixes, ports, protocol and priority", "[classbench]") {
    const auto rules = parse_classbench_rules(
        "@10.0.0.0/8\t192.168.1.1/32\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\t\n"
        "\n"
        "@0.0.0.0/0\t10.1.2.3/24\t1024 : 2047\t0 : 0\t0x00/0x00\n"
        "@255.255.255.255/32\t128.0.0.0/1\t65535 : 65535\t53 : 53\t0x11/0xff\t0x1000/0x1000\r\n",
        "t.rules");
    REQUIRE(rules.size() == 3);

    const FieldRule& a = rules[0];
    CHECK(a.field[kFieldSrc] == FieldRange{ip(10, 0, 0, 0), ip(10, 255, 255, 255)});
    CHECK(a.field[kFieldDst] == FieldRange{ip(192, 168, 1, 1), ip(192, 168, 1, 1)});
    CHECK(a.field[kFieldSport] == FieldRange{0, 65535});
    CHECK(a.field[kFieldDport] == FieldRange{80, 80});
    CHECK(a.field[kFieldProto] == FieldRange{6, 6});
    CHECK(a.priority == 0);
    CHECK(a.id == 0);

    const FieldRule& b = rules[1];  // the blank line does not count
    CHECK(b.field[kFieldSrc] == FieldRange{0, 0xFFFFFFFFu});                          // /0 is everything
    CHECK(b.field[kFieldDst] == FieldRange{ip(10, 1, 2, 0), ip(10, 1, 2, 255)});      // host bits dropped
    CHECK(b.field[kFieldSport] == FieldRange{1024, 2047});
    CHECK(b.field[kFieldDport] == FieldRange{0, 0});
    CHECK(b.field[kFieldProto] == FieldRange{0, 255});                                // wildcard protocol
    CHECK(b.priority == 1);
    CHECK(b.id == 1);

    const FieldRule& c = rules[2];
    CHECK(c.field[kFieldSrc] == FieldRange{0xFFFFFFFFu, 0xFFFFFFFFu});
    CHECK(c.field[kFieldDst] == FieldRange{0x80000000u, 0xFFFFFFFFu});
    CHECK(c.field[kFieldProto] == FieldRange{17, 17});
    CHECK(c.priority == 2);
}

TEST_CASE("ClassBench rules: malformed lines name FILE:LINE", "[classbench]") {
    const std::string good = "@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF\n";
    const auto fails_with = [&](const std::string& bad_line, const std::string& message) {
        REQUIRE_THROWS_WITH(parse_classbench_rules(good + "\n" + bad_line + "\n", "bad.rules"),
                            StartsWith("bad.rules:3: ") && Contains(message));
    };
    fails_with("1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF", "expected '@'");
    fails_with("@1.2.3.4/33\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF", "prefix length out of range");
    fails_with("@1.2.3.256/32\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF", "octet out of range");
    fails_with("@1.2.3/24\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF", "expected '.'");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t80 : 79\t0 : 65535\t0x06/0xFF", "inverted source port range");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t0 : 65536\t0 : 65535\t0x06/0xFF", "source high port out of range");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 - 65535\t0x06/0xFF", "expected ':'");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xF0", "unsupported protocol mask 0xF0");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 : 65535\t6/0xFF", "expected 0x");
    fails_with("@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t0 : 65535", "expected 0x");
}

TEST_CASE("ClassBench trace: five decimal fields kept, the rest ignored", "[classbench]") {
    const auto keys = parse_classbench_trace("167772161\t3232235777\t1024\t80\t6\t0\t1\n"
                                             "\n"
                                             "4294967295 0 65535 0 255\n",
                                             "t.trace");
    REQUIRE(keys.size() == 2);
    CHECK(keys[0] == FieldKey{ip(10, 0, 0, 1), ip(192, 168, 1, 1), 1024, 80, 6});
    CHECK(keys[1] == FieldKey{0xFFFFFFFFu, 0, 65535, 0, 255});

    REQUIRE_THROWS_WITH(parse_classbench_trace("1 2 3 4 5\n1 2 70000 4 5\n", "x.trace"),
                        StartsWith("x.trace:2: ") && Contains("source port out of range"));
    REQUIRE_THROWS_WITH(parse_classbench_trace("1 2 3 4\n", "x.trace"),
                        StartsWith("x.trace:1: ") && Contains("expected a number protocol"));
    REQUIRE_THROWS_WITH(parse_classbench_trace("4294967296 2 3 4 5\n", "x.trace"),
                        StartsWith("x.trace:1: ") && Contains("source address out of range"));
    REQUIRE_THROWS_WITH(parse_classbench_trace("1 2 3 4 256\n", "x.trace"), Contains("protocol out of range"));
}

TEST_CASE("ClassBench files: read whole, errors carry the path", "[classbench]") {
    const auto dir = std::filesystem::temp_directory_path() / "tagwall-test-classbench";
    std::filesystem::create_directories(dir);
    const auto rules_path = (dir / "r.rules").string();
    std::ofstream(rules_path) << "@1.2.3.0/24\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFF\t0x0000/0x0000\n"
                                 "@1.2.3.0/24\t5.6.7.8/32\t0 : 65535\t0 : 65535\t0x06/0xFG\t0x0000/0x0000\n";
    REQUIRE_THROWS_WITH(read_classbench_rules(rules_path), StartsWith(rules_path + ":2: "));
    REQUIRE_THROWS_WITH(read_classbench_rules((dir / "missing.rules").string()), Contains("cannot open"));
    std::filesystem::remove_all(dir);
}
