// Catch2 v2 has no prebuilt main library: provide one.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
