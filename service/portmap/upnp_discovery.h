// Which UPnP IGD natpilot talks to. SSDP answers come from anyone on the LAN and name any URL, so
// SOAP goes only to the gateway itself (gateway.address or the default route's) or to the host
// gateway.root_desc_url names; every other IGD found is reported, never used.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "portmap/port_mapper.h"

namespace natpilot::upnp {

struct IgdPolicy {
  std::string gateway;         // the gateway's address; "" when unknown
  std::string configured_url;  // gateway.root_desc_url: its host is trusted like the gateway
  std::vector<Subnet> lan;     // other IGDs here get their description read, to be reported
  size_t max_other_reads = 4;  // at most this many descriptions of IGDs that are not used
  // Each description read, connect to last byte (the gateway's; another host's, read only to be
  // reported). The SOAP calls to the gateway keep miniupnpc's own timeouts.
  std::chrono::milliseconds description_timeout{3000};
  std::chrono::milliseconds other_description_timeout{1000};
};

struct ChosenIgd {
  std::string root_desc_url;
  std::string control_url;   // absolute; its host is trusted
  std::string service_type;  // the connected WANIPConnection/WANPPPConnection's
  std::string event_url;     // its GENA event URL, absolute, on a trusted host; "" when none
  std::string device_type;
  std::string external_address;
};

struct IgdChoice {
  GatewayInfo info;              // status, detail, label, other IGDs
  std::optional<ChosenIgd> igd;  // set when info.status is kReady
};

// SSDP M-SEARCH through miniupnpc: the description URLs that answered, each once, in order.
std::vector<std::string> DiscoverDescriptionUrls(std::chrono::milliseconds timeout,
                                                 const std::string& multicast_interface);

// Reads the descriptions of trusted hosts first, and uses the first IGD among them with a
// connection service whose GetStatusInfo says Connected (checked per service: a router with two
// WAN connections may have one down). Everything else found goes into info.other_igds.
IgdChoice ChooseIgd(const std::vector<std::string>& description_urls, const IgdPolicy& policy);

}  // namespace natpilot::upnp
