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
  std::chrono::milliseconds probe_timeout{500};
  std::chrono::milliseconds request_timeout{4000};  // libnatpmp retransmits within it
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
