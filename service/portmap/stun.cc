#include "portmap/stun.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>

namespace natpilot::stun {
namespace {

constexpr uint32_t kCookie = 0x2112A442;
constexpr uint16_t kBindingRequest = 0x0001;
constexpr uint16_t kBindingSuccess = 0x0101;
constexpr uint16_t kBindingError = 0x0111;
constexpr uint16_t kMappedAddress = 0x0001;
constexpr uint16_t kXorMappedAddress = 0x0020;

uint16_t Get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
uint32_t Get32(std::span<const uint8_t> b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

std::string Dotted(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

}  // namespace

std::vector<uint8_t> EncodeBindingRequest(const TransactionId& id) {
  std::vector<uint8_t> out(20, 0);
  out[1] = kBindingRequest & 0xff;  // type 0x0001, length 0
  out[4] = kCookie >> 24;
  out[5] = (kCookie >> 16) & 0xff;
  out[6] = (kCookie >> 8) & 0xff;
  out[7] = kCookie & 0xff;
  for (size_t i = 0; i < id.size(); ++i) out[8 + i] = id[i];
  return out;
}

Result<Mapped> DecodeBindingResponse(std::span<const uint8_t> b, const TransactionId& id) {
  if (b.size() < 20) return Fail(Errc::kInvalidArgument, "STUN answer shorter than its header");
  const uint16_t type = Get16(b, 0);
  const uint16_t length = Get16(b, 2);
  if ((b[0] & 0xC0) != 0 || Get32(b, 4) != kCookie) {
    return Fail(Errc::kInvalidArgument, "not a STUN message (RFC 5389 magic cookie missing)");
  }
  if (!std::equal(id.begin(), id.end(), b.begin() + 8)) {
    return Fail(Errc::kInvalidArgument, "STUN answer to another transaction");
  }
  if (length % 4 != 0 || size_t(length) + 20 > b.size()) {
    return Fail(Errc::kInvalidArgument,
                "STUN message length " + std::to_string(length) + " is wrong");
  }
  if (type == kBindingError)
    return Fail(Errc::kUnavailable, "the STUN server answered with an error");
  if (type != kBindingSuccess)
    return Fail(Errc::kInvalidArgument, "not a Binding success response");
  std::optional<Mapped> plain;
  for (size_t at = 20; at + 4 <= 20 + size_t(length);) {
    const uint16_t attr = Get16(b, at);
    const uint16_t len = Get16(b, at + 2);
    const size_t value = at + 4;
    if (value + len > 20 + size_t(length))
      return Fail(Errc::kInvalidArgument, "STUN attribute overruns the message");
    if ((attr == kXorMappedAddress || attr == kMappedAddress) && len >= 8 && b[value + 1] == 0x01) {
      uint16_t port = Get16(b, value + 2);
      uint32_t addr = Get32(b, value + 4);
      if (attr == kXorMappedAddress) {
        port ^= static_cast<uint16_t>(kCookie >> 16);
        addr ^= kCookie;
        return Mapped{Dotted(addr), port};
      }
      plain = Mapped{Dotted(addr), port};
    }
    at = value + ((len + 3u) & ~3u);
  }
  if (plain) return *plain;
  return Fail(Errc::kInvalidArgument, "STUN answer has no IPv4 mapped address");
}

namespace {

Result<sockaddr_in> Resolve(const std::string& server) {
  const auto colon = server.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Fail(Errc::kInvalidArgument, "STUN server '" + server + "' is not HOST:PORT");
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(server.substr(0, colon).c_str(), server.substr(colon + 1).c_str(), &hints,
                  &res) != 0 ||
      !res) {
    return Fail(Errc::kUnavailable, "STUN server '" + server + "' cannot be resolved");
  }
  sockaddr_in to{};
  std::memcpy(&to, res->ai_addr, sizeof to);
  freeaddrinfo(res);
  return to;
}

}  // namespace

Result<Mapped> Query(const std::string& server, std::chrono::milliseconds timeout) {
  auto resolved = Resolve(server);
  if (!resolved) return tl::unexpected(resolved.error());
  sockaddr_in to = *resolved;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Errc::kUnavailable, "no UDP socket for STUN");
  TransactionId id;
  std::random_device rd;
  for (auto& x : id) x = static_cast<uint8_t>(rd());
  const auto request = EncodeBindingRequest(id);
  // RFC 5389 7.2.1: retransmissions 500 ms apart, doubling, here at most 7 and never past the
  // deadline. Each wait is computed in whole milliseconds and clamped, so no clock arithmetic can
  // overflow into a wait without end.
  using Ms = std::chrono::milliseconds;
  const auto start = std::chrono::steady_clock::now();
  const int64_t total_ms = std::max<int64_t>(0, timeout.count());
  auto elapsed_ms = [&start] {
    return std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start).count();
  };
  int64_t rto_ms = 500;
  Result<Mapped> result = Fail(Errc::kUnavailable, "no answer from STUN server " + server);
  for (int sent = 0; sent < 7 && elapsed_ms() < total_ms;
       ++sent, rto_ms = std::min<int64_t>(rto_ms * 2, 8000)) {
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    const int64_t until_ms = std::min(total_ms, elapsed_ms() + rto_ms);
    for (;;) {
      const int64_t left = until_ms - elapsed_ms();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, rto_ms)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) break;
      uint8_t buf[1500];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0 || from.sin_addr.s_addr != to.sin_addr.s_addr) continue;
      auto answer =
          DecodeBindingResponse(std::span<const uint8_t>(buf, static_cast<size_t>(n)), id);
      if (answer) {
        ::close(fd);
        return answer;
      }
      result = tl::unexpected(answer.error());
    }
  }
  ::close(fd);
  return result;
}

Result<std::vector<std::string>> PathTo(const std::string& server, int max_hops,
                                        std::chrono::milliseconds per_hop) {
  auto resolved = Resolve(server);
  if (!resolved) return tl::unexpected(resolved.error());
  sockaddr_in to = *resolved;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Errc::kUnavailable, "no UDP socket for the path check");
  int on = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  std::vector<std::string> hops;
  TransactionId id{};
  std::random_device rd;
  for (auto& x : id) x = static_cast<uint8_t>(rd());
  const auto request = EncodeBindingRequest(id);
  bool reached = false;
  for (int ttl = 1; ttl <= max_hops && !reached; ++ttl) {
    ::setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    std::string hop;
    const auto until = std::chrono::steady_clock::now() + per_hop;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      if (p.revents & POLLERR) {
        uint8_t data[64];
        uint8_t control[512];
        sockaddr_in from{};
        iovec iov{data, sizeof data};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(fd, &msg, MSG_ERRQUEUE) < 0) continue;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) continue;
          const auto* ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
          if (ee->ee_origin != SO_EE_ORIGIN_ICMP) continue;
          const auto* offender = reinterpret_cast<const sockaddr_in*>(SO_EE_OFFENDER(ee));
          char text[INET_ADDRSTRLEN] = "";
          inet_ntop(AF_INET, &offender->sin_addr, text, sizeof text);
          if (ee->ee_type == 11) {
            hop = text;  // time exceeded: a router on the way
          } else if (offender->sin_addr.s_addr == to.sin_addr.s_addr) {
            reached = true;  // the server itself (port unreachable, ...)
          } else {
            hop = text;
          }
        }
        break;
      }
      uint8_t buf[1500];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0 &&
          DecodeBindingResponse(std::span<const uint8_t>(buf, static_cast<size_t>(n)), id)) {
        reached = true;
        break;
      }
    }
    if (!reached) hops.push_back(hop);
  }
  ::close(fd);
  return hops;
}

}  // namespace natpilot::stun
