// PcpMapper against a scripted PCP server of our own on real UDP sockets (loopback): the quirks
// miniupnpd never produces, such as late duplicates, replies from the wrong port, silence, a full
// table, another port offered, and an epoch that goes back.
#include "portmap/pcp_mapper.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace natpilot {
namespace {

// Answers each request with what `script` returns (zero or more datagrams, each sent from the
// server's port, or from `other_fd_` when the script asks for the wrong port).
class ScriptedPcpServer {
 public:
  struct Reply {
    std::vector<uint8_t> bytes;
    bool from_other_port = false;
  };
  using Script = std::function<std::vector<Reply>(const std::vector<uint8_t>& request)>;

  explicit ScriptedPcpServer(Script script) : script_(std::move(script)) {
    fd_ = Bind(&port_);
    other_fd_ = Bind(nullptr);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedPcpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
    close(other_fd_);
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  std::vector<uint8_t> Last() {
    std::lock_guard lock(mu_);
    return seen_.back();
  }

 private:
  static int Bind(uint16_t* port) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    if (port) *port = ntohs(a.sin_port);
    return fd;
  }
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      uint8_t buf[1100];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      std::vector<uint8_t> req(buf, buf + n);
      {
        std::lock_guard lock(mu_);
        seen_.push_back(req);
      }
      ++requests_;
      for (const Reply& r : script_(req)) {
        sendto(r.from_other_port ? other_fd_ : fd_, r.bytes.data(), r.bytes.size(), 0,
               reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }
  Script script_;
  std::mutex mu_;
  std::vector<std::vector<uint8_t>> seen_;
  int fd_ = -1, other_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A response to `req` (a request as sent), with the given result, epoch and external port.
std::vector<uint8_t> Answer(const std::vector<uint8_t>& req, uint8_t result, uint32_t epoch,
                            int external_port = -1, uint32_t lifetime = 0) {
  std::vector<uint8_t> b(req.begin(), req.begin() + std::min<size_t>(req.size(), 60));
  b[1] |= 0x80;
  b[3] = result;
  if (lifetime == 0) lifetime = (uint32_t(req[4]) << 24) | (req[5] << 16) | (req[6] << 8) | req[7];
  for (int i = 0; i < 4; ++i) b[4 + i] = uint8_t(lifetime >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) b[8 + i] = uint8_t(epoch >> (24 - 8 * i));
  for (int i = 12; i < 24; ++i) b[i] = 0;
  if (b.size() >= 60) {
    if (external_port >= 0) b[42] = uint8_t(external_port >> 8), b[43] = uint8_t(external_port);
    const uint8_t ext[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7};
    std::copy(std::begin(ext), std::end(ext), b.begin() + 44);
  }
  return b;
}

// The probe's (and the heartbeat's) request: the deletion (lifetime 0) of a mapping nobody has.
bool IsPresenceRequest(const std::vector<uint8_t>& req) {
  return req.size() >= 60 && req[1] == 1 && (req[4] | req[5] | req[6] | req[7]) == 0;
}

PcpOptions Options(uint16_t port) {
  PcpOptions o;
  o.gateway = "127.0.0.1";
  o.port = port;
  o.probe_timeout = std::chrono::milliseconds(300);
  o.initial_timeout_s = 0.1;
  o.attempts = 3;
  return o;
}

MapRequest Req(uint16_t port, std::string nonce = "0102030405060708090a0b0c") {
  return MapRequest{Transport::kUdp, "127.0.0.1", port, port, Seconds(3600), "", std::move(nonce)};
}

TEST(PcpMapper, MapsAndMatchesTheAnswerToItsRequest) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto lease = mapper.Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->external_port, 5060);
  EXPECT_EQ(lease->external_address, "198.51.100.7");
  EXPECT_EQ(lease->lifetime, Seconds(3600));
  EXPECT_EQ(lease->protocol, GatewayProtocol::kPcp);
}

TEST(PcpMapper, ALateDuplicateForAnotherRequestIsNotTakenAsTheAnswer) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    if (req.size() < 60) return std::vector<ScriptedPcpServer::Reply>{{Answer(req, 0, 100)}};
    auto stale = Answer(req, 0, 100, 7777);
    stale[24] ^= 0xff;  // another nonce: a late answer to some earlier request
    return std::vector<ScriptedPcpServer::Reply>{{stale}, {Answer(req, 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto lease = mapper.Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->external_port, 5060);
}

TEST(PcpMapper, AReplyFromAnUnexpectedPortIsNeverRead) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, 0, 100), true}};
  });
  PcpOptions o = Options(server.port());
  PcpMapper mapper(o);
  EXPECT_EQ(mapper.Probe().status, GatewayInfo::Status::kNotFound);
}

TEST(PcpMapper, OnlyAnAnswerWithTheProbesNonceFindsAServer) {
  // What a LAN host forging the gateway's address can send: an ANNOUNCE answer (it has no nonce),
  // a MAP answer with a nonce of its own. Neither is a PCP server; the real answer is, whatever
  // its result.
  std::atomic<int> mode{0};
  ScriptedPcpServer server([&mode](const std::vector<uint8_t>& req) {
    // The real answer (mode 2) as miniupnpd gives it: NO_RESOURCES for a deletion of nothing.
    std::vector<uint8_t> forged = Answer(req, mode == 2 ? 8 : 0, 100);
    if (mode == 0) {
      forged.resize(24);
      forged[1] = 0x80;  // ANNOUNCE, SUCCESS
    } else if (mode == 1) {
      forged[24] ^= 0xff;  // another nonce
    }
    return std::vector<ScriptedPcpServer::Reply>{{forged}};
  });
  PcpMapper mapper(Options(server.port()));
  auto info = mapper.Probe();
  EXPECT_EQ(info.status, GatewayInfo::Status::kNotFound) << info.detail;
  EXPECT_TRUE(IsPresenceRequest(server.Last()));
  mode = 1;
  EXPECT_EQ(mapper.Probe().status, GatewayInfo::Status::kNotFound);
  mode = 2;
  EXPECT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  mode = 0;
  EXPECT_FALSE(mapper.Heartbeat()) << "a forged ANNOUNCE answer does not keep a gateway alive";
}

TEST(PcpMapper, ASilentServerIsUnavailableAfterTheRetransmissions) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    std::vector<ScriptedPcpServer::Reply> out;
    if (IsPresenceRequest(req)) out.push_back({Answer(req, 0, 100)});  // answers the probe only
    return out;
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  const int before = server.requests();
  auto lease = mapper.Map(Req(5060));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, make_error_code(Errc::kUnavailable));
  EXPECT_EQ(server.requests() - before, 3) << "three transmissions, then it gives up";
}

TEST(PcpMapper, AFullTableIsAReadableError) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{
        {Answer(req, IsPresenceRequest(req) ? 0 : 8, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto lease = mapper.Map(Req(5060));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, pcp::MakePcpError(pcp::ResultCode::kNoResources));
  EXPECT_NE(lease.error().message.find("NO_RESOURCES"), std::string::npos);
}

TEST(PcpMapper, AnotherExternalPortIsRefusedAndGivenBack) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, 0, 100, 40000)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto lease = mapper.Map(Req(5060));
  ASSERT_FALSE(lease);
  EXPECT_NE(lease.error().message.find("offered external port 40000"), std::string::npos);
  const auto del = server.Last();  // the give-back: same nonce, lifetime 0
  EXPECT_EQ(del[4] | del[5] | del[6] | del[7], 0);
  EXPECT_EQ(del[24], 0x01);
}

// Refusals are conditions every protocol maps onto; policy code never reads protocol numbers.
TEST(Refusals, EachProtocolsCodesMapOntoTheConditions) {
  EXPECT_EQ(MakeUpnpError(upnp::kActionNotAuthorized), Refusal::kNotAuthorized);
  EXPECT_EQ(MakeUpnpError(upnp::kConflictInMappingEntry), Refusal::kPortTaken);
  EXPECT_EQ(MakeUpnpError(upnp::kNoPortMapsAvailable), Refusal::kTableFull);
  EXPECT_EQ(pcp::MakePcpError(pcp::ResultCode::kNotAuthorized), Refusal::kNotAuthorized);
  EXPECT_EQ(pcp::MakePcpError(pcp::ResultCode::kUnsuppOption), Refusal::kNotAuthorized);
  EXPECT_EQ(pcp::MakePcpError(pcp::ResultCode::kNoResources), Refusal::kTableFull);
  // Failures, not refusals: retried, never sent to static rules.
  for (const std::error_code& failure :
       {MakeUpnpError(upnp::kInvalidArgs), MakeUpnpError(-3),
        MakeUpnpError(upnp::kOnlyPermanentLeasesSupported),
        pcp::MakePcpError(pcp::ResultCode::kCannotProvideExternal),
        pcp::MakePcpError(pcp::ResultCode::kNetworkFailure), make_error_code(Errc::kUnavailable)}) {
    EXPECT_FALSE(IsRefusal(failure)) << failure.category().name() << " " << failure.value();
  }
  EXPECT_NE(MakeUpnpError(upnp::kNoPortMapsAvailable), Refusal::kPortTaken);
}

TEST(PcpMapper, ADeleteOfNothingOrOfAnotherNonceLeavesNothingOfOursToDelete) {
  std::atomic<uint8_t> result{8};
  ScriptedPcpServer server([&result](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{
        {Answer(req, IsPresenceRequest(req) && req[24] != 0x01 ? 0 : result.load(), 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto del = Req(5060);
  del.lifetime = Seconds(0);
  EXPECT_TRUE(mapper.Unmap(del)) << "NO_RESOURCES (miniupnpd: no such mapping)";
  result = 2;
  EXPECT_TRUE(mapper.Unmap(del)) << "NOT_AUTHORIZED (miniupnpd: another nonce)";
  result = 13;
  EXPECT_FALSE(mapper.Unmap(del)) << "NETWORK_FAILURE is a failure";
}

TEST(PcpMapper, AnEpochThatGoesBackMeansTheServerLostItsState) {
  std::atomic<uint32_t> epoch{1000};
  ScriptedPcpServer server([&epoch](const std::vector<uint8_t>& req) {
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, 0, epoch)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  ASSERT_TRUE(mapper.Map(Req(5060)));
  EXPECT_FALSE(mapper.TakeStateLoss());
  epoch = 3;  // rebooted
  ASSERT_TRUE(mapper.Heartbeat());
  EXPECT_TRUE(mapper.TakeStateLoss());
  EXPECT_FALSE(mapper.TakeStateLoss()) << "reported once";
}

TEST(PcpMapper, ThirdPartyIsAskedOnlyUntilTheServerRefusesIt) {
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    const bool third_party = req.size() > 60;
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, third_party ? 5 : 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  EXPECT_TRUE(mapper.CanMapFor("192.168.1.20"));
  auto r = Req(5060);
  r.internal_address = "192.168.1.20";
  auto lease = mapper.Map(r);
  ASSERT_FALSE(lease);
  EXPECT_NE(lease.error().message.find("UNSUPP_OPTION"), std::string::npos);
  EXPECT_FALSE(mapper.CanMapFor("192.168.1.20"));
  EXPECT_TRUE(mapper.CanMapFor("127.0.0.1"));
}

TEST(PcpMapper, AThirdPartyRefusalLastsOnlyUntilTheNextProbe) {
  std::atomic<bool> refuse{true};
  ScriptedPcpServer server([&refuse](const std::vector<uint8_t>& req) {
    const bool third_party = req.size() > 60;
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, third_party && refuse ? 2 : 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto r = Req(5060);
  r.internal_address = "192.168.1.20";
  ASSERT_FALSE(mapper.Map(r));  // NOT_AUTHORIZED before any THIRD_PARTY grant: refused
  EXPECT_FALSE(mapper.CanMapFor("192.168.1.20"));
  refuse = false;  // the gateway was reconfigured, or it was a new router
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  EXPECT_TRUE(mapper.CanMapFor("192.168.1.20")) << "a probe asks again";
  auto lease = mapper.Map(r);
  ASSERT_TRUE(lease) << lease.error().message;
}

TEST(PcpMapper, NotAuthorizedAfterAThirdPartyGrantIsAboutThatRequestOnly) {
  // A gateway that allows THIRD_PARTY but refuses one request (a nonce that does not match the
  // mapping's): NOT_AUTHORIZED for nonce byte 0xee, success otherwise.
  ScriptedPcpServer server([](const std::vector<uint8_t>& req) {
    const bool bad_nonce = req.size() >= 60 && req[24] == 0xee;
    return std::vector<ScriptedPcpServer::Reply>{{Answer(req, bad_nonce ? 2 : 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto r = Req(5060);
  r.internal_address = "192.168.1.20";
  ASSERT_TRUE(mapper.Map(r));
  auto other = Req(5062, "ee0203040506070809aabbcc");
  other.internal_address = "192.168.1.21";
  auto refused = mapper.Map(other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, pcp::MakePcpError(pcp::ResultCode::kNotAuthorized));
  EXPECT_TRUE(mapper.CanMapFor("192.168.1.21")) << "THIRD_PARTY stays on";
}

TEST(PcpMapper, UnsuppOptionDisablesThirdPartyEvenAfterAGrant) {
  std::atomic<bool> unsupported{false};
  ScriptedPcpServer server([&unsupported](const std::vector<uint8_t>& req) {
    const bool third_party = req.size() > 60;
    return std::vector<ScriptedPcpServer::Reply>{
        {Answer(req, third_party && unsupported ? 5 : 0, 100)}};
  });
  PcpMapper mapper(Options(server.port()));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto r = Req(5060);
  r.internal_address = "192.168.1.20";
  ASSERT_TRUE(mapper.Map(r));
  unsupported = true;
  ASSERT_FALSE(mapper.Map(r));
  EXPECT_FALSE(mapper.CanMapFor("192.168.1.20"));
}

}  // namespace
}  // namespace natpilot
