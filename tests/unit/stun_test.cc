#include "portmap/stun.h"

#include <gtest/gtest.h>

namespace natpilot::stun {
namespace {

const TransactionId kId{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

std::vector<uint8_t> Response(uint16_t type, std::vector<uint8_t> attrs,
                              const TransactionId& id = kId) {
  std::vector<uint8_t> b(20 + attrs.size(), 0);
  const uint8_t head[8] = {uint8_t(type >> 8),
                           uint8_t(type),
                           uint8_t(attrs.size() >> 8),
                           uint8_t(attrs.size()),
                           0x21,
                           0x12,
                           0xA4,
                           0x42};
  for (size_t i = 0; i < 8; ++i) b[i] = head[i];
  for (size_t i = 0; i < id.size(); ++i) b[8 + i] = id[i];
  for (size_t i = 0; i < attrs.size(); ++i) b[20 + i] = attrs[i];
  return b;
}

TEST(Stun, EncodesABindingRequest) {
  const auto b = EncodeBindingRequest(kId);
  ASSERT_EQ(b.size(), 20u);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[2], 0x00);
  EXPECT_EQ(b[3], 0x00);
  EXPECT_EQ(b[4], 0x21);
  EXPECT_EQ(b[7], 0x42);
  EXPECT_EQ(b[8], 1);
  EXPECT_EQ(b[19], 12);
}

TEST(Stun, DecodesXorMappedAddress) {
  // 203.0.113.1:5060 XORed with the cookie: port 0x13c4 ^ 0x2112, address 0xcb007101 ^ 0x2112a442.
  const auto b =
      Response(0x0101, {0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0x32, 0xd6, 0xea, 0x12, 0xd5, 0x43});
  auto m = DecodeBindingResponse(b, kId);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->address, "203.0.113.1");
  EXPECT_EQ(m->port, 5060);
}

TEST(Stun, FallsBackToMappedAddressAndSkipsUnknownAttributes) {
  const auto b =
      Response(0x0101, {0x80, 0x22, 0x00, 0x03, 'a',  'b',  'c',  0x00,  // SOFTWARE, padded
                        0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x13, 0xc4, 198, 51, 100, 7});
  auto m = DecodeBindingResponse(b, kId);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->address, "198.51.100.7");
  EXPECT_EQ(m->port, 5060);
}

TEST(Stun, RefusesWhatIsNotOurAnswer) {
  const std::vector<uint8_t> xor_attr{0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
                                      0x32, 0xd6, 0xea, 0x12, 0xd5, 0x43};
  TransactionId other = kId;
  other[0] = 99;
  EXPECT_FALSE(
      DecodeBindingResponse(Response(0x0101, xor_attr, other), kId));  // another transaction
  EXPECT_FALSE(DecodeBindingResponse(Response(0x0111, {}), kId));      // error response
  EXPECT_FALSE(DecodeBindingResponse(Response(0x0101, {}), kId));      // no address
  auto shortened = Response(0x0101, xor_attr);
  shortened.resize(26);
  EXPECT_FALSE(DecodeBindingResponse(shortened, kId));  // truncated
  auto overrun = Response(0x0101, {0x00, 0x20, 0x00, 0x40, 0, 0, 0, 0});
  EXPECT_FALSE(DecodeBindingResponse(overrun, kId));  // attribute overruns
  auto bad_cookie = Response(0x0101, xor_attr);
  bad_cookie[4] = 0;
  EXPECT_FALSE(DecodeBindingResponse(bad_cookie, kId));
  EXPECT_FALSE(DecodeBindingResponse(std::vector<uint8_t>(10, 0), kId));
}

TEST(Stun, QueryRefusesAServerWithoutPort) {
  auto r = Query("stun.example", std::chrono::milliseconds(10));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("HOST:PORT"), std::string::npos);
}

}  // namespace
}  // namespace natpilot::stun
