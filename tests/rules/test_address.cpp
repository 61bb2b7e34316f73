// Addresses, prefixes and MACs: parsing edge cases and the arithmetic the compiler relies on.
#include <catch2/catch.hpp>

#include "rules/address.hpp"

using namespace tagwall::rules;

TEST_CASE("IPv4 and IPv6 addresses parse and print back", "[address]") {
    const auto v4 = IpAddr::parse("198.18.0.1");
    REQUIRE(v4);
    CHECK(v4->family == Family::v4);
    CHECK(v4->v4_host_order() == 0xC6120001u);
    CHECK(v4->str() == "198.18.0.1");
    const auto v6 = IpAddr::parse("2001:db8::11");
    REQUIRE(v6);
    CHECK(v6->family == Family::v6);
    CHECK(v6->str() == "2001:db8::11");
    CHECK(*IpAddr::parse("::c612:1") != *v4);  // same low bits, different family
}

TEST_CASE("malformed addresses are refused", "[address]") {
    for (const char* bad : {"", "198.18.0", "198.18.0.256", "198.18.0.1.2", "2001:db8:::1", "foo", " 198.18.0.1",
                            "2001:db8::g", "198.18.0.1/24"})
        CHECK_FALSE(IpAddr::parse(bad));
}

TEST_CASE("prefixes: lengths, host bits, containment", "[address]") {
    std::string why;
    const auto p = Prefix::parse("198.18.0.0/15", &why);
    REQUIRE(p);
    CHECK(p->len == 15);
    CHECK(p->contains(*IpAddr::parse("198.19.255.255")));
    CHECK_FALSE(p->contains(*IpAddr::parse("198.20.0.0")));
    CHECK_FALSE(p->contains(*IpAddr::parse("2001:db8::1")));
    CHECK(p->last().str() == "198.19.255.255");

    CHECK(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("255.255.255.255")));
    CHECK(Prefix::parse("::/0")->contains(*IpAddr::parse("2001:db8::1")));
    CHECK(Prefix::parse("2001:db8::1")->len == 128);  // a bare address is a host prefix

    CHECK_FALSE(Prefix::parse("198.18.0.1/24", &why));
    CHECK(why == "'198.18.0.1/24' has host bits set below /24 (did you mean 198.18.0.0/24?)");
    CHECK_FALSE(Prefix::parse("198.18.0.0/33", &why));
    CHECK(why == "prefix length '33' must be 0..32 for IPv4");
    CHECK_FALSE(Prefix::parse("2001:db8::/129", &why));
    CHECK_FALSE(Prefix::parse("198.18.0.0/", &why));
    CHECK_FALSE(Prefix::parse("198.18.0.0/-1", &why));
    CHECK_FALSE(Prefix::parse("300.1.1.1/8", &why));
}

TEST_CASE("increment and decrement stop at the ends of the family", "[address]") {
    auto a = *IpAddr::parse("198.18.0.255");
    REQUIRE(increment(a));
    CHECK(a.str() == "198.18.1.0");
    auto top = *IpAddr::parse("255.255.255.255");
    CHECK_FALSE(increment(top));
    auto zero = *IpAddr::parse("::");
    CHECK_FALSE(decrement(zero));
    auto b = *IpAddr::parse("2001:db8::");
    REQUIRE(decrement(b));
    CHECK(b.str() == "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST_CASE("MAC addresses", "[address]") {
    std::string why;
    CHECK(MacAddr::parse("52:54:00:00:10:11")->str() == "52:54:00:00:10:11");
    CHECK(MacAddr::parse("52-54-00-AB-10-11")->str() == "52:54:00:ab:10:11");
    CHECK_FALSE(MacAddr::parse("52:54:00:00:10", &why));
    CHECK_FALSE(MacAddr::parse("52:54:00:00:10:1g", &why));
    CHECK_FALSE(MacAddr::parse("52:54-00:00:10:11", &why));
    CHECK_FALSE(MacAddr::parse("01:00:5e:00:00:01", &why));
    CHECK(why.find("multicast") != std::string::npos);
    CHECK_FALSE(MacAddr::parse("00:00:00:00:00:00", &why));
}
