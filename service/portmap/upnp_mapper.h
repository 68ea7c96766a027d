// UPnP IGD v1/v2 through miniupnpc (SOAP); which IGD: upnp_discovery.h.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "portmap/port_mapper.h"

namespace natpilot {

struct UpnpOptions {
  // The gateway (gateway.address); empty: the default route's. SOAP goes only to an IGD whose
  // description and control URLs name this host, or the host root_desc_url names.
  std::string gateway;
  std::chrono::milliseconds discovery_timeout{1000};
  std::string multicast_interface;  // interface name or address for SSDP; empty = default
  std::string root_desc_url;        // skip SSDP and use this root description
  bool events = true;               // subscribe to the IGD's GENA events (upnp_events.h)
};

class UpnpMapper final : public PortMapper {
 public:
  explicit UpnpMapper(UpnpOptions options);
  ~UpnpMapper() override;

  GatewayProtocol protocol() const override { return GatewayProtocol::kUpnpIgd; }
  GatewayInfo Probe() override;
  Result<Lease> Map(const MapRequest& request) override;
  bool CanMapFor(std::string_view) const override { return true; }  // the internal-client field
  Result<void> Unmap(const MapRequest& request) override;
  bool CanList() const override { return true; }
  Result<std::optional<GatewayEntry>> GetEntry(Transport transport,
                                               uint16_t external_port) override;
  Result<std::vector<GatewayEntry>> ListEntries() override;
  // GetExternalIPAddress: the periodic check's look at the external address (UPnP has no epoch
  // and no announcement of its own).
  Result<std::string> Heartbeat() override;
  // Told after every probe: the GENA event URL of the IGD chosen ("" when none was, or it offers
  // none). Set before the reconciler starts; called on the thread that probes (the prober's), which
  // may still run while the reconciler stops: the listener must outlive the reconciler.
  void SetEventUrlListener(std::function<void(const std::string&)> listener) {
    event_url_listener_ = std::move(listener);
  }

 private:
  struct Igd;
  GatewayInfo Discover();
  Result<void> Ready() const;
  UpnpOptions options_;
  std::unique_ptr<Igd> igd_;
  std::function<void(const std::string&)> event_url_listener_;
};

}  // namespace natpilot
