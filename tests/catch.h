#pragma once
// Tests include this one header so they build with Catch2 v3 (device) and v2 (Debian 12).
#if defined(HEADCAL_CATCH3)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
#include "support/test_support.h"
