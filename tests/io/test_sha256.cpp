// SHA-256 against the FIPS 180-2 / NIST example vectors, plus incremental-update consistency.
#include <string>
#include <vector>

#include "catch.h"
#include "io/util/sha256.h"

using hc::Sha256;
using hc::sha256_hex;

TEST_CASE("sha256 known vectors", "[io][sha256]") {
  CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(std::string("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding no longer fits in the last block, so a second block is needed.
  CHECK(sha256_hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 incremental updates match one-shot at every split", "[io][sha256]") {
  std::vector<unsigned char> bytes(768);  // 0..255 three times (12 blocks of 64); digest from Python hashlib
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i & 0xff);
  const std::string expected = "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363";
  const std::string one_shot = sha256_hex(bytes.data(), bytes.size());
  CHECK(one_shot == expected);
  for (size_t split : {size_t(0), size_t(1), size_t(55), size_t(56), size_t(63), size_t(64), size_t(65), size_t(700)}) {
    Sha256 h;
    h.update(bytes.data(), split);
    h.update(bytes.data() + split, bytes.size() - split);
    INFO("split " << split);
    CHECK(h.hex_digest() == one_shot);
  }
  // Byte-at-a-time, and hex_digest() leaves the hasher usable.
  Sha256 h;
  for (size_t i = 0; i < 3; ++i) h.update(bytes.data() + i, 1);
  CHECK(h.hex_digest() == sha256_hex(bytes.data(), 3));
  for (size_t i = 3; i < bytes.size(); ++i) h.update(bytes.data() + i, 1);
  CHECK(h.hex_digest() == one_shot);
}
