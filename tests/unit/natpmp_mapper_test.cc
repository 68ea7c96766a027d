// NatPmpMapper (libnatpmp) against a scripted NAT-PMP server on a loopback address: libnatpmp
// always talks to port 5351 of the gateway, so each test binds its own 127.0.53.x:5351.
#include "portmap/natpmp_mapper.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace natpilot {
namespace {

using namespace std::chrono_literals;

// Receives requests on `address`:5351; after the first request, sends `reply(request)` every
// `every` to the asker until stopped (a stream of answers, whatever it asks).
class StreamingNatPmpServer {
 public:
  using Reply = std::function<std::vector<uint8_t>(const std::vector<uint8_t>& request)>;
  StreamingNatPmpServer(const char* address, Reply reply, std::chrono::milliseconds every)
      : address_(address), reply_(std::move(reply)), every_(every) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5351);
    inet_pton(AF_INET, address, &a.sin_addr);
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (bound_) thread_ = std::thread([this] { Serve(); });
  }
  ~StreamingNatPmpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  bool bound() const { return bound_; }
  int requests() const { return requests_; }
  int sent() const { return sent_; }

 private:
  void Serve() {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    std::vector<uint8_t> last;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(every_.count())) > 0) {
        uint8_t buf[64];
        len = sizeof from;
        const ssize_t n =
            recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
          last.assign(buf, buf + n);
          ++requests_;
        }
      }
      if (last.empty()) continue;
      const auto out = reply_(last);
      if (!out.empty()) {
        sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        ++sent_;
      }
    }
  }
  std::string address_;
  Reply reply_;
  std::chrono::milliseconds every_;
  int fd_ = -1;
  bool bound_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, sent_{0};
  std::thread thread_;
};

void Put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (24 - 8 * i));
}

// A public-address answer (RFC 6886 3.2).
std::vector<uint8_t> PublicAddress(uint32_t epoch) {
  std::vector<uint8_t> b(12, 0);
  b[1] = 128;
  Put32(b, 4, epoch);
  b[8] = 198, b[9] = 51, b[10] = 100, b[11] = 7;
  return b;
}

// A mapping answer (RFC 6886 3.3) for UDP (opcode 1) or TCP (2).
std::vector<uint8_t> Mapping(uint8_t opcode, uint16_t private_port, uint16_t public_port,
                             uint32_t epoch) {
  std::vector<uint8_t> b(16, 0);
  b[1] = uint8_t(128 + opcode);
  Put32(b, 4, epoch);
  b[8] = uint8_t(private_port >> 8), b[9] = uint8_t(private_port);
  b[10] = uint8_t(public_port >> 8), b[11] = uint8_t(public_port);
  Put32(b, 12, 3600);
  return b;
}

// The server: a public-address request gets a public address; a mapping request gets `mapping`.
StreamingNatPmpServer::Reply Answers(
    std::function<std::vector<uint8_t>(const std::vector<uint8_t>&)> mapping) {
  return [mapping](const std::vector<uint8_t>& req) {
    if (req.size() >= 2 && req[1] == 0) return PublicAddress(100);
    return mapping(req);
  };
}

NatPmpOptions Options(const char* gateway) {
  NatPmpOptions o;
  o.gateway = gateway;
  o.probe_timeout = 300ms;
  o.request_timeout = 1000ms;
  return o;
}

MapRequest Req(uint16_t port, const char* local) {
  return MapRequest{Transport::kUdp, local, port, port, Seconds(3600), "", ""};
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(NatPmpMapper, MapsPortPreserving) {
  StreamingNatPmpServer server("127.0.53.1", Answers([](const std::vector<uint8_t>& req) {
                                 const uint16_t port = uint16_t(req[4] << 8 | req[5]);
                                 return Mapping(req[1], port, port, 100);
                               }),
                               200ms);
  if (!server.bound()) GTEST_SKIP() << "127.0.53.1:5351 is taken";
  NatPmpMapper mapper(Options("127.0.53.1"));
  const GatewayInfo info = mapper.Probe();
  ASSERT_EQ(info.status, GatewayInfo::Status::kReady) << info.detail;
  EXPECT_EQ(info.external_address, "198.51.100.7");
  auto lease = mapper.Map(Req(5060, "127.0.0.1"));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->external_port, 5060);
}

TEST(NatPmpMapper, AStreamOfWrongAnswersCannotHoldAMapPastItsDeadline) {
  // Every 20 ms an answer for another private port: a late answer to some other request.
  StreamingNatPmpServer server("127.0.53.2", Answers([](const std::vector<uint8_t>& req) {
                                 return Mapping(req[1], 4444, 4444, 100);
                               }),
                               20ms);
  if (!server.bound()) GTEST_SKIP() << "127.0.53.2:5351 is taken";
  NatPmpMapper mapper(Options("127.0.53.2"));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  const auto start = std::chrono::steady_clock::now();
  auto lease = mapper.Map(Req(5060, "127.0.0.1"));
  const double took = SecondsSince(start);
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, make_error_code(Errc::kUnavailable)) << lease.error().message;
  EXPECT_LT(took, 20.0) << "a hang guard only: the deadline is 1 s";
  EXPECT_GT(server.sent(), 10) << "the wrong answers did arrive meanwhile";
  auto unmapped = mapper.Unmap(Req(5060, "127.0.0.1"));
  EXPECT_FALSE(unmapped);
  EXPECT_LT(SecondsSince(start), 40.0) << "a hang guard only";
}

TEST(NatPmpMapper, AStreamOfWrongAnswersCannotHoldAProbePastItsDeadline) {
  // Whatever it is asked, a mapping answer every 20 ms: never a public address.
  StreamingNatPmpServer server(
      "127.0.53.3", [](const std::vector<uint8_t>&) { return Mapping(1, 4444, 4444, 100); }, 20ms);
  if (!server.bound()) GTEST_SKIP() << "127.0.53.3:5351 is taken";
  NatPmpMapper mapper(Options("127.0.53.3"));
  const auto start = std::chrono::steady_clock::now();
  const GatewayInfo info = mapper.Probe();
  EXPECT_EQ(info.status, GatewayInfo::Status::kNotFound) << info.detail;
  EXPECT_LT(SecondsSince(start), 20.0) << "a hang guard only: the deadline is 300 ms";
  EXPECT_GT(server.sent(), 3);
}

TEST(NatPmpMapper, AWrongAnswerBeforeTheRightOneIsIgnored) {
  std::atomic<int> n{0};
  StreamingNatPmpServer server("127.0.53.4", Answers([&n](const std::vector<uint8_t>& req) {
                                 const uint16_t port = uint16_t(req[4] << 8 | req[5]);
                                 return ++n == 1 ? Mapping(req[1], 4444, 4444, 100)
                                                 : Mapping(req[1], port, port, 100);
                               }),
                               50ms);
  if (!server.bound()) GTEST_SKIP() << "127.0.53.4:5351 is taken";
  NatPmpMapper mapper(Options("127.0.53.4"));
  ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  auto lease = mapper.Map(Req(5060, "127.0.0.1"));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->external_port, 5060);
}

}  // namespace
}  // namespace natpilot
