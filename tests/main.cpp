// The Catch2 v2 entry point for tagwall-unit-tests; test files include catch2/catch.hpp only.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
