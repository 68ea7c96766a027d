#include "portmap/natpmp_mapper.h"

#define ENABLE_STRNATPMPERR
#include <arpa/inet.h>
#include <natpmp.h>
#include <sys/select.h>

#include <functional>
#include <utility>

#include "portmap/netutil.h"

namespace natpilot {
namespace {

class NatPmpCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nat-pmp"; }
  std::string message(int ev) const override { return std::string("NAT-PMP: ") + strnatpmperr(ev); }
};

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const std::error_category& NatPmpCategory() {
  static const NatPmpCategoryImpl category;
  return category;
}

struct NatPmpMapper::Session {
  natpmp_t n{};
  ~Session() { closenatpmp(&n); }
  // Waits until `deadline` (steady seconds) for an answer `accept` takes, while libnatpmp
  // retransmits on RFC 6886 3.1's schedule (250 ms, doubling). The deadline counts every attempt:
  // an answer `accept` refuses (a late answer to an earlier request) is ignored and never extends
  // it, so a stream of wrong answers cannot hold the caller.
  Result<natpmpresp_t> Wait(double deadline,
                            const std::function<bool(const natpmpresp_t&)>& accept) {
    for (;;) {
      natpmpresp_t resp{};
      const int r = readnatpmpresponseorretry(&n, &resp);
      if (r >= 0) {
        if (accept(resp)) return resp;
        // libnatpmp clears the pending request on any readable answer; ours is still pending.
        n.has_pending_request = 1;
      } else if (r != NATPMP_TRYAGAIN) {
        return Fail(std::error_code(r, NatPmpCategory()), strnatpmperr(r));
      }
      const double left = deadline - SteadySeconds();
      if (left <= 0) return Fail(Errc::kUnavailable, "no NAT-PMP answer");
      if (r >= 0) continue;  // read on: more datagrams may be queued
      timeval tv{};
      getnatpmprequesttimeout(&n, &tv);
      const double retry = double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
      const double wait = std::max(0.0, std::min(left, retry));
      tv.tv_sec = static_cast<long>(wait);
      tv.tv_usec = static_cast<long>((wait - double(tv.tv_sec)) * 1e6);
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(n.s, &fds);
      select(n.s + 1, &fds, nullptr, nullptr, &tv);
    }
  }
};

namespace {

double Deadline(std::chrono::milliseconds budget) {
  return SteadySeconds() + std::chrono::duration<double>(budget).count();
}

bool IsPublicAddress(const natpmpresp_t& r) { return r.type == NATPMP_RESPTYPE_PUBLICADDRESS; }

}  // namespace

struct NatPmpMapper::Answer {
  uint16_t external_port;
  uint32_t lifetime_s;
};

NatPmpMapper::NatPmpMapper(NatPmpOptions options) : options_(std::move(options)) {}
NatPmpMapper::~NatPmpMapper() = default;

bool NatPmpMapper::TakeStateLoss() { return std::exchange(state_lost_, false); }

GatewayInfo NatPmpMapper::Probe() {
  session_.reset();
  GatewayInfo info;
  info.protocol = GatewayProtocol::kNatPmp;
  info.status = GatewayInfo::Status::kNotFound;
  auto route = FindGatewayRoute(options_.gateway);
  if (!route) {
    info.detail = route.error().message;
    return info;
  }
  const std::string* gw = &route->gateway;
  local_ = route->local;
  info.address = *gw;
  info.local_address = local_;
  info.identity = "nat-pmp:" + *gw;
  auto session = std::make_unique<Session>();
  in_addr gw_addr{};
  inet_pton(AF_INET, gw->c_str(), &gw_addr);
  int r = initnatpmp(&session->n, 1, gw_addr.s_addr);
  if (r == 0) r = sendpublicaddressrequest(&session->n);
  if (r < 0) {
    info.detail = std::string("NAT-PMP: ") + strnatpmperr(r);
    return info;
  }
  auto resp = session->Wait(Deadline(options_.probe_timeout), IsPublicAddress);
  if (!resp) {
    info.detail = "no NAT-PMP answer from " + *gw + " (" + resp.error().message + ")";
    return info;
  }
  if (!epoch_.Check(resp->epoch, SteadySeconds())) state_lost_ = true;
  char ext[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &resp->pnu.publicaddress.addr, ext, sizeof ext);
  external_ = ext;
  info.external_address = external_;
  info.status = GatewayInfo::Status::kReady;
  info.detail = "NAT-PMP gateway at " + *gw + " (epoch " + std::to_string(resp->epoch) + " s)";
  session_ = std::move(session);
  return info;
}

Result<std::string> NatPmpMapper::Heartbeat() {
  if (!session_) return Fail(Errc::kUnavailable, "no NAT-PMP gateway has been found yet");
  const int r = sendpublicaddressrequest(&session_->n);
  if (r < 0) return Fail(std::error_code(r, NatPmpCategory()), strnatpmperr(r));
  auto resp = session_->Wait(Deadline(options_.probe_timeout), IsPublicAddress);
  if (!resp) return tl::unexpected(resp.error());
  if (!epoch_.Check(resp->epoch, SteadySeconds())) state_lost_ = true;
  char ext[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &resp->pnu.publicaddress.addr, ext, sizeof ext);
  external_ = ext;
  return external_;
}

Result<NatPmpMapper::Answer> NatPmpMapper::Request(const MapRequest& req, uint32_t lifetime_s) {
  if (!session_) return Fail(Errc::kUnavailable, "no NAT-PMP gateway has been found yet");
  if (req.internal_address != local_) {
    return Fail(Errc::kFailedPrecondition,
                "NAT-PMP maps only to the host that asks (" + local_ + ")");
  }
  const int proto = req.transport == Transport::kTcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP;
  int r = sendnewportmappingrequest(&session_->n, proto, req.internal_port, req.external_port,
                                    lifetime_s);
  if (r < 0) return Fail(std::error_code(r, NatPmpCategory()), strnatpmperr(r));
  const int want = req.transport == Transport::kTcp ? NATPMP_RESPTYPE_TCPPORTMAPPING
                                                    : NATPMP_RESPTYPE_UDPPORTMAPPING;
  // A late answer to an earlier request is not this one's.
  auto ours = [&](const natpmpresp_t& a) {
    return a.type == want && a.pnu.newportmapping.privateport == req.internal_port;
  };
  auto resp = session_->Wait(Deadline(options_.request_timeout), ours);
  if (!resp) return tl::unexpected(resp.error());
  if (!epoch_.Check(resp->epoch, SteadySeconds())) state_lost_ = true;
  return Answer{resp->pnu.newportmapping.mappedpublicport, resp->pnu.newportmapping.lifetime};
}

Result<Lease> NatPmpMapper::Map(const MapRequest& req) {
  const std::string what = "NAT-PMP map " + std::to_string(req.external_port) + "/" +
                           std::string(ToString(req.transport));
  auto answer = Request(req, static_cast<uint32_t>(req.lifetime.count()));
  if (!answer) {
    return Fail(answer.error().code, what + ": " + answer.error().message);
  }
  if (answer->external_port != req.external_port) {
    // Port-preserving or nothing: give the other port back.
    (void)Request(req, 0);
    return Fail(Errc::kConflict, what + ": the gateway offered external port " +
                                     std::to_string(answer->external_port) +
                                     " instead; natpilot needs the same port");
  }
  Lease lease;
  lease.protocol = GatewayProtocol::kNatPmp;
  lease.transport = req.transport;
  lease.internal_address = req.internal_address;
  lease.internal_port = req.internal_port;
  lease.external_address = external_;
  lease.external_port = answer->external_port;
  lease.lifetime = Seconds(answer->lifetime_s);
  return lease;
}

Result<void> NatPmpMapper::Unmap(const MapRequest& req) {
  auto answer = Request(req, 0);
  if (!answer) return tl::unexpected(answer.error());
  return {};
}

}  // namespace natpilot
