#include "portmap/pcp_mapper.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "portmap/netutil.h"

namespace natpilot {
namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<pcp::Nonce> NonceFromHex(const std::string& hex) {
  pcp::Nonce n{};
  if (hex.size() != 24) return Fail(Errc::kInvalidArgument, "PCP nonce must be 24 hex digits");
  for (size_t i = 0; i < 12; ++i) {
    n[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return n;
}

}  // namespace

PcpMapper::PcpMapper(PcpOptions options) : options_(std::move(options)) {}
PcpMapper::~PcpMapper() { Close(); }

void PcpMapper::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool PcpMapper::TakeStateLoss() { return std::exchange(state_lost_, false); }

bool PcpMapper::CanMapFor(std::string_view internal_address) const {
  return internal_address == local_ || (options_.third_party && !third_party_refused_);
}

GatewayInfo PcpMapper::Probe() {
  Close();
  third_party_refused_ = false;
  third_party_granted_ = false;
  GatewayInfo info;
  info.protocol = GatewayProtocol::kPcp;
  info.status = GatewayInfo::Status::kNotFound;
  auto route = FindGatewayRoute(options_.gateway);
  if (!route) {
    info.detail = route.error().message;
    return info;
  }
  gateway_ = route->gateway;
  local_ = route->local;
  info.address = gateway_;
  info.local_address = local_;
  info.identity = "pcp:" + gateway_;
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(options_.port);
  inet_pton(AF_INET, gateway_.c_str(), &to.sin_addr);
  // Connected: the kernel drops datagrams from any other address or port (a reply from an
  // unexpected port is not ours to read).
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    info.detail = std::string("cannot open a PCP socket: ") + std::strerror(errno);
    Close();
    return info;
  }
  auto resp = AskPresence(std::chrono::duration<double>(options_.probe_timeout).count());
  if (!resp) {
    info.detail = "no PCP answer from " + gateway_ + ":" + std::to_string(options_.port) + " (" +
                  resp.error().message + ")";
    return info;
  }
  // Any result with our nonce is a PCP server that read our MAP (miniupnpd answers the deletion of
  // a mapping it does not have with NO_RESOURCES), except one that does not do MAP at all.
  if (resp->result == pcp::ResultCode::kUnsuppOpcode) {
    info.detail =
        "PCP server at " + gateway_ + " answered " + pcp::MakePcpError(resp->result).message();
    return info;
  }
  info.status = GatewayInfo::Status::kReady;
  info.detail = "PCP server at " + gateway_ + " (epoch " + std::to_string(resp->epoch_s) + " s)";
  return info;
}

Result<std::string> PcpMapper::Heartbeat() {
  auto resp = AskPresence(std::chrono::duration<double>(options_.probe_timeout).count());
  if (!resp) return tl::unexpected(resp.error());
  return std::string();  // the answer's external address is of no mapping; the epoch was checked
}

Result<pcp::Response> PcpMapper::AskPresence(double timeout_s) {
  auto client = pcp::ParseIpv4(local_);
  if (!client) return tl::unexpected(client.error());
  // The port is this socket's own: no device's mapping can be it, whatever a server that ignores
  // the nonce would delete.
  sockaddr_in self{};
  socklen_t len = sizeof self;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&self), &len) != 0) {
    return Fail(Errc::kUnavailable, std::string("PCP socket: ") + std::strerror(errno));
  }
  pcp::MapRequest req;
  req.client = *client;
  req.internal = *client;
  req.transport = Transport::kUdp;
  req.internal_port = ntohs(self.sin_port);
  req.lifetime_s = 0;
  std::random_device random;  // the kernel's generator: a nonce must not be guessable
  for (auto& b : req.nonce) b = static_cast<uint8_t>(random());
  return Exchange(pcp::EncodeMapRequest(req),
                  [&req](const pcp::Response& r) { return pcp::Answers(r, req); }, {timeout_s});
}

Result<pcp::Response> PcpMapper::Exchange(const std::vector<uint8_t>& bytes,
                                          const std::function<bool(const pcp::Response&)>& accept,
                                          std::vector<double> waits_s) {
  if (fd_ < 0) return Fail(Errc::kUnavailable, "no PCP server has been found yet");
  for (double wait : waits_s) {
    if (::send(fd_, bytes.data(), bytes.size(), 0) < 0) {
      return Fail(Errc::kUnavailable, std::string("PCP send: ") + std::strerror(errno));
    }
    const double deadline = SteadySeconds() + wait;
    for (double left = wait; left > 0; left = deadline - SteadySeconds()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) break;
      uint8_t buf[1100];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == ECONNREFUSED) {
          return Fail(Errc::kUnavailable, "the gateway does not listen for PCP (port unreachable)");
        }
        continue;
      }
      auto resp = pcp::DecodeResponse(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
      if (!resp || !accept(*resp)) continue;  // garbage, or a late answer to another request
      if (!epoch_.Check(resp->epoch_s, SteadySeconds())) state_lost_ = true;
      return resp;
    }
  }
  return Fail(Errc::kUnavailable, "the PCP server at " + gateway_ + " did not answer");
}

Result<pcp::Response> PcpMapper::SendMap(const MapRequest& r, uint32_t lifetime_s) {
  auto nonce = NonceFromHex(r.nonce);
  if (!nonce) return tl::unexpected(nonce.error());
  auto internal = pcp::ParseIpv4(r.internal_address);
  if (!internal) return tl::unexpected(internal.error());
  pcp::MapRequest req;
  req.client = *pcp::ParseIpv4(local_);
  req.nonce = *nonce;
  req.transport = r.transport;
  req.internal_port = r.internal_port;
  req.suggested_external_port = r.external_port;
  req.lifetime_s = lifetime_s;
  req.third_party = r.internal_address != local_;
  req.internal = *internal;
  std::mt19937 rng(std::random_device{}());
  auto rand = [&rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); };
  return Exchange(
      pcp::EncodeMapRequest(req),
      [&req](const pcp::Response& resp) { return pcp::Answers(resp, req); },
      pcp::RetransmitDelays(options_.initial_timeout_s, 1024, options_.attempts, rand));
}

Result<Lease> PcpMapper::Map(const MapRequest& r) {
  const std::string what = "PCP MAP " + std::to_string(r.external_port) + "/" +
                           std::string(ToString(r.transport)) + " to " + r.internal_address + ":" +
                           std::to_string(r.internal_port);
  auto resp = SendMap(r, static_cast<uint32_t>(r.lifetime.count()));
  if (!resp) return tl::unexpected(resp.error());
  if (resp->result != pcp::ResultCode::kSuccess) {
    const bool third_party = r.internal_address != local_;
    // RFC 6887 13.1: a server that does not allow THIRD_PARTY answers UNSUPP_OPTION or
    // NOT_AUTHORIZED; stop offering this protocol for other hosts until the next probe. But
    // NOT_AUTHORIZED also answers a nonce that does not match the mapping's (MAP processing,
    // 11.3): once the gateway has granted a THIRD_PARTY request since the probe, it allows
    // THIRD_PARTY and the refusal is about this one request.
    if (third_party &&
        (resp->result == pcp::ResultCode::kUnsuppOption ||
         (resp->result == pcp::ResultCode::kNotAuthorized && !third_party_granted_))) {
      third_party_refused_ = true;
    }
    return Fail(pcp::MakePcpError(resp->result),
                what + ": " + pcp::MakePcpError(resp->result).message());
  }
  if (r.internal_address != local_) third_party_granted_ = true;
  if (resp->external_port != r.external_port) {
    // Mappings are port-preserving (PBXes rewrite only the address in SDP): give it back.
    (void)SendMap(r, 0);
    return Fail(Errc::kConflict, what + ": the gateway offered external port " +
                                     std::to_string(resp->external_port) +
                                     " instead; natpilot needs the same port");
  }
  Lease lease;
  lease.protocol = GatewayProtocol::kPcp;
  lease.transport = r.transport;
  lease.internal_address = r.internal_address;
  lease.internal_port = r.internal_port;
  lease.external_address = pcp::FormatIpv4(resp->external);
  lease.external_port = resp->external_port;
  lease.lifetime = Seconds(resp->lifetime_s);
  return lease;
}

Result<void> PcpMapper::Unmap(const MapRequest& r) {
  auto resp = SendMap(r, 0);
  if (!resp) return tl::unexpected(resp.error());
  // miniupnpd (pcpserver.c, DeletePCPMap) answers a delete of a mapping it does not have with
  // NO_RESOURCES, and one whose entry carries another nonce (made by another request, or by UPnP
  // since) with NOT_AUTHORIZED: either way nothing of ours is left to delete.
  if (resp->result == pcp::ResultCode::kNoResources ||
      resp->result == pcp::ResultCode::kNotAuthorized) {
    return {};
  }
  if (resp->result != pcp::ResultCode::kSuccess) {
    return Fail(pcp::MakePcpError(resp->result), "PCP delete " + std::to_string(r.external_port) +
                                                     "/" + std::string(ToString(r.transport)) +
                                                     ": " +
                                                     pcp::MakePcpError(resp->result).message());
  }
  return {};
}

}  // namespace natpilot
