// NAT-PMP (RFC 6886) through libnatpmp. It maps ports only to the host that asks.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "portmap/pcp_codec.h"
#include "portmap/port_mapper.h"

namespace natpilot {

struct NatPmpOptions {
  std::string gateway;  // empty: the default route's gateway
  // Overall deadlines, every retransmission included (libnatpmp resends after 250 ms, doubling,
  // RFC 6886 3.1); answers to other requests are ignored and never extend them.
  // Probe and heartbeat (public address): sent at 0, 250 and 750 ms within the default 1 s that
  // the config gives every protocol's probe (gateway.discovery_timeout_ms).
  std::chrono::milliseconds probe_timeout{500};
  // Map and unmap: sent at 0, 0.25, 0.75, 1.75 and 3.75 s, five of RFC 6886's nine tries (the
  // full 64 s schedule would hold the reconciler's pass that long per mapping). PCP waits 3 s
  // for its first answer (IRT, RFC 6887 8.1.1); NAT-PMP's faster schedule fits five tries in 4 s.
  std::chrono::milliseconds request_timeout{4000};
};

const std::error_category& NatPmpCategory();

class NatPmpMapper final : public PortMapper {
 public:
  explicit NatPmpMapper(NatPmpOptions options);
  ~NatPmpMapper() override;
  GatewayProtocol protocol() const override { return GatewayProtocol::kNatPmp; }
  GatewayInfo Probe() override;
  bool CanMapFor(std::string_view internal_address) const override {
    return internal_address == local_;
  }
  Result<Lease> Map(const MapRequest& request) override;
  Result<void> Unmap(const MapRequest& request) override;
  bool TakeStateLoss() override;
  Result<std::string> Heartbeat() override;

 private:
  struct Session;
  struct Answer;
  Result<Answer> Request(const MapRequest& r, uint32_t lifetime_s);
  NatPmpOptions options_;
  std::unique_ptr<Session> session_;
  std::string local_;
  std::string external_;
  pcp::EpochTracker epoch_;  // NAT-PMP's epoch rule (RFC 6886 3.6) is the one PCP adopted
  bool state_lost_ = false;
};

}  // namespace natpilot
