// PCP (RFC 6887) client over UDP, written here: Debian has no PCP library.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "portmap/pcp_codec.h"
#include "portmap/port_mapper.h"

namespace natpilot {

struct PcpOptions {
  std::string gateway;  // the PCP server; empty: the default route's gateway
  uint16_t port = pcp::kServerPort;
  std::chrono::milliseconds probe_timeout{500};
  double initial_timeout_s = 3.0;  // IRT of section 8.1.1
  size_t attempts = 3;             // transmissions before the server counts as gone
  bool third_party = true;         // ask THIRD_PARTY mappings for other LAN hosts
};

class PcpMapper final : public PortMapper {
 public:
  explicit PcpMapper(PcpOptions options);
  ~PcpMapper() override;
  GatewayProtocol protocol() const override { return GatewayProtocol::kPcp; }
  GatewayInfo Probe() override;
  bool CanMapFor(std::string_view internal_address) const override;
  Result<Lease> Map(const MapRequest& request) override;
  Result<void> Unmap(const MapRequest& request) override;
  bool TakeStateLoss() override;
  Result<std::string> Heartbeat() override;

 private:
  // Sends `bytes` and waits for a response `accept` takes, retransmitting per section 8.1.1.
  Result<pcp::Response> Exchange(const std::vector<uint8_t>& bytes,
                                 const std::function<bool(const pcp::Response&)>& accept,
                                 std::vector<double> waits_s);
  Result<pcp::Response> SendMap(const MapRequest& request, uint32_t lifetime_s);
  // Is a PCP server there (and its epoch)? An ANNOUNCE answer carries no nonce, so any LAN host
  // that forges the gateway's source address could fake one (and did, in the hostile-LAN lab
  // test). This asks instead for the deletion of a mapping that does not exist (this socket's own
  // port, a fresh nonce), and only an answer that echoes the nonce counts, whatever its result
  // (RFC 6887 section 15 says SUCCESS; miniupnpd says NO_RESOURCES, and logs it as an error).
  Result<pcp::Response> AskPresence(double timeout_s);
  void Close();

  PcpOptions options_;
  int fd_ = -1;
  std::string gateway_;
  std::string local_;
  pcp::EpochTracker epoch_;
  bool state_lost_ = false;
  // THIRD_PARTY refused by the gateway since the last probe (a re-probe, a new router or a new
  // epoch goes through Probe and asks again).
  bool third_party_refused_ = false;
  // A THIRD_PARTY request was granted since the last probe: a later NOT_AUTHORIZED is about that
  // request (a nonce mismatch), not a gateway that refuses THIRD_PARTY.
  bool third_party_granted_ = false;
};

}  // namespace natpilot
