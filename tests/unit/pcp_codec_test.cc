#include "portmap/pcp_codec.h"

#include <gtest/gtest.h>

#include "portmap/announce_listener.h"

namespace natpilot::pcp {
namespace {

MapRequest Request() {
  MapRequest r;
  r.client = *ParseIpv4("192.168.50.2");
  r.nonce = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  r.transport = Transport::kUdp;
  r.internal_port = 5060;
  r.suggested_external_port = 5060;
  r.lifetime_s = 7200;
  return r;
}

// A MAP response as a server would send it for Request().
std::vector<uint8_t> Reply(ResultCode result = ResultCode::kSuccess, uint32_t epoch = 1000) {
  auto b = EncodeMapRequest(Request());
  b[1] |= 0x80;
  b[3] = static_cast<uint8_t>(result);
  b[8] = uint8_t(epoch >> 24), b[9] = uint8_t(epoch >> 16), b[10] = uint8_t(epoch >> 8),
  b[11] = uint8_t(epoch);
  for (int i = 12; i < 24; ++i) b[i] = 0;  // reserved in responses
  const uint8_t ext[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 1};
  std::copy(std::begin(ext), std::end(ext), b.begin() + 24 + 20);
  return b;
}

TEST(PcpCodec, EncodesAMapRequestAsRfc6887Says) {
  const auto b = EncodeMapRequest(Request());
  ASSERT_EQ(b.size(), 60u);
  EXPECT_EQ(b[0], 2);  // version
  EXPECT_EQ(b[1], 1);  // R=0, opcode MAP
  EXPECT_EQ((b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7]), 7200);
  const uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 50, 2};
  EXPECT_TRUE(std::equal(std::begin(client), std::end(client), b.begin() + 8));
  EXPECT_EQ(b[24], 1);  // nonce
  EXPECT_EQ(b[35], 12);
  EXPECT_EQ(b[36], 17);  // UDP
  EXPECT_EQ((b[40] << 8 | b[41]), 5060);
  EXPECT_EQ((b[42] << 8 | b[43]), 5060);
  for (int i = 44; i < 60; ++i) EXPECT_EQ(b[i], 0) << "suggested external address is all-zero";
}

TEST(PcpCodec, ThirdPartyOptionCarriesTheDeviceAddress) {
  auto r = Request();
  r.third_party = true;
  r.internal = *ParseIpv4("192.168.50.10");
  r.transport = Transport::kTcp;
  const auto b = EncodeMapRequest(r);
  ASSERT_EQ(b.size(), 80u);
  EXPECT_EQ(b[36], 6);  // TCP
  EXPECT_EQ(b[60], 1);  // THIRD_PARTY
  EXPECT_EQ((b[62] << 8 | b[63]), 16);
  EXPECT_EQ(b[74], 0xff);
  EXPECT_EQ(b[79], 10);
}

TEST(PcpCodec, AnnounceIsAHeaderOnly) {
  const auto b = EncodeAnnounceRequest(*ParseIpv4("192.168.50.2"));
  ASSERT_EQ(b.size(), 24u);
  EXPECT_EQ(b[1], 0);
}

TEST(PcpCodec, DecodesAMapResponseAndMatchesItToItsRequest) {
  auto r = DecodeResponse(Reply());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->opcode, Opcode::kMap);
  EXPECT_EQ(r->result, ResultCode::kSuccess);
  EXPECT_EQ(r->lifetime_s, 7200u);
  EXPECT_EQ(r->epoch_s, 1000u);
  EXPECT_EQ(r->external_port, 5060);
  EXPECT_EQ(FormatIpv4(r->external), "203.0.113.1");
  EXPECT_TRUE(Answers(*r, Request()));

  auto other = Request();
  other.nonce[0] = 99;  // a late reply to an earlier request must not be taken for this one
  EXPECT_FALSE(Answers(*r, other));
  other = Request();
  other.internal_port = 5061;
  EXPECT_FALSE(Answers(*r, other));
  other = Request();
  other.transport = Transport::kTcp;
  EXPECT_FALSE(Answers(*r, other));
}

TEST(PcpCodec, ErrorResultsAreDecodedWithReadableMessages) {
  auto r = DecodeResponse(Reply(ResultCode::kNotAuthorized));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result, ResultCode::kNotAuthorized);
  EXPECT_NE(MakePcpError(r->result).message().find("NOT_AUTHORIZED"), std::string::npos);
}

TEST(PcpCodec, RejectsWhatIsNotAWellFormedResponse) {
  auto good = Reply();
  EXPECT_FALSE(DecodeResponse(std::span(good).first(20)));  // short header
  EXPECT_FALSE(DecodeResponse(std::span(good).first(30)));  // not a multiple of 4
  EXPECT_FALSE(DecodeResponse(std::span(good).first(40)));  // MAP success without payload
  auto b = good;
  b[0] = 0;  // NAT-PMP version byte
  EXPECT_FALSE(DecodeResponse(b));
  b = good;
  b[1] = 1;  // a request
  EXPECT_FALSE(DecodeResponse(b));
  b = good;
  b[3] = 200;  // unknown result
  EXPECT_FALSE(DecodeResponse(b));
  b = good;
  b[24 + 12] = 1;  // ICMP
  EXPECT_FALSE(DecodeResponse(b));
  b = good;
  b[24 + 20] = 0x20;  // an IPv6 external address
  EXPECT_FALSE(DecodeResponse(b));
}

TEST(PcpRetransmit, FollowsSection811) {
  auto mid = [] { return 0.5; };  // RAND = 0
  EXPECT_EQ(RetransmitDelays(3, 1024, 5, mid), (std::vector<double>{3, 6, 12, 24, 48}));
  const auto capped = RetransmitDelays(3, 10, 4, mid);
  EXPECT_EQ(capped.back(), 10);
  auto high = [] { return 0.999; };
  EXPECT_NEAR(RetransmitDelays(3, 1024, 1, high)[0], 3.3, 0.01);
  auto low = [] { return 0.0; };
  EXPECT_NEAR(RetransmitDelays(3, 1024, 1, low)[0], 2.7, 0.01);
}

TEST(PcpEpoch, ATimeThatRunsBackOrTooSlowMeansTheServerLostItsState) {
  EpochTracker t;
  EXPECT_TRUE(t.Check(1000, 50.0));
  EXPECT_TRUE(t.Check(1060, 110.0));  // both moved 60 s
  EXPECT_TRUE(t.Check(1061, 111.5));  // within the allowed drift
  EXPECT_FALSE(t.Check(5, 120.0));    // the server restarted: epoch went back
  EXPECT_TRUE(t.Check(65, 180.0));
  EXPECT_FALSE(t.Check(70, 480.0));  // 300 s passed here, 5 s there
}

// What arrives on 224.0.0.1:5350: NAT-PMP public address announcements (RFC 6886 3.2.1: exactly 12
// bytes, version 0, opcode 128, result SUCCESS) and PCP ANNOUNCE responses; anything else is not
// one.
TEST(Announcements, NatPmpAndPcpAreToldApartAndNothingElseCounts) {
  std::vector<uint8_t> natpmp = {0, 128, 0, 0, 0, 0, 0x01, 0x2c, 203, 0, 113, 9};
  auto a = natpilot::AnnounceListener::Decode(natpmp);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->what, "NAT-PMP announcement");
  EXPECT_EQ(a->epoch_s, 300u);
  EXPECT_EQ(a->external_address, "203.0.113.9");
  auto failed = natpmp;
  failed[3] = 3;  // "network failure": announces nothing
  EXPECT_FALSE(natpilot::AnnounceListener::Decode(failed).has_value());
  auto longer = natpmp;
  longer.push_back(0);
  EXPECT_FALSE(natpilot::AnnounceListener::Decode(longer).has_value());
  EXPECT_FALSE(natpilot::AnnounceListener::Decode(std::span(natpmp.data(), 11)).has_value());
  auto request = natpmp;
  request[1] = 0;  // a client's request, not an answer
  EXPECT_FALSE(natpilot::AnnounceListener::Decode(request).has_value());

  auto announce = EncodeAnnounceRequest(*ParseIpv4("192.168.50.1"));
  announce[1] |= 0x80;  // as the server sends it
  for (size_t i = 12; i < 24; ++i) announce[i] = 0;
  auto p = natpilot::AnnounceListener::Decode(announce);
  ASSERT_TRUE(p.has_value()) << "a PCP ANNOUNCE response";
  EXPECT_EQ(p->what, "PCP ANNOUNCE");
  EXPECT_TRUE(p->external_address.empty());
  EXPECT_FALSE(natpilot::AnnounceListener::Decode(Reply()).has_value())
      << "a MAP answer is not one";
}

}  // namespace
}  // namespace natpilot::pcp
