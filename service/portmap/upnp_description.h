// A UPnP root description read by natpilot itself (pure functions, fuzzed): miniupnpc's parser
// keeps only two WAN connection services, 128 bytes of each URL, and not the device type, which
// the choice of a connection and the gateway label need. Also the URL and text helpers the IGD
// choice uses. Nothing here touches a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace natpilot::upnp {

inline constexpr size_t kMaxDescriptionBytes = 256 * 1024;

struct ServiceDescription {
  std::string service_type;   // "urn:schemas-upnp-org:service:WANIPConnection:2"
  std::string control_url;    // as written (maybe relative); printable ASCII, no spaces
  std::string event_sub_url;  // GENA subscriptions (maybe relative, maybe absent); same checks
  std::string device_type;    // the device that holds it
};

struct RootDescription {
  std::string url_base;       // <URLBase>, often absent
  std::string device_type;    // the InternetGatewayDevice's type if there is one, else the root's
  std::string friendly_name;  // the root device's; sanitized (printable ASCII), bounded
  std::string manufacturer;
  std::string model_name;
  std::string udn;
  std::vector<ServiceDescription> services;  // every service of every device, in document order
  // WANIPConnection and WANPPPConnection services, in document order.
  std::vector<ServiceDescription> WanConnections() const;
};

// Parses a root description. Bounded: at most kMaxDescriptionBytes, 32 levels, 64 devices and
// 256 services; a service whose control URL is not printable ASCII is left out. Errors only for
// input that is not a description at all (no <root> element, unbalanced tags, too large).
Result<RootDescription> ParseRootDescription(std::string_view xml);

struct HttpUrl {
  std::string host;  // as written: an IPv4 literal, a name, or "[v6]"
  uint16_t port = 80;
  std::string path;  // starts with '/'
};
// "http://host[:port][/path]" only (UPnP control is plain HTTP); nullopt otherwise.
std::optional<HttpUrl> ParseHttpUrl(std::string_view url);
// `ref` resolved against `base` (URLBase, else the description's own URL). Empty when neither
// gives an http URL.
std::string ResolveUrl(std::string_view base, std::string_view ref);

// Printable ASCII only (others become '?'), at most `max` bytes: text from the LAN goes into logs,
// labels and protobuf strings (which must be UTF-8).
std::string Sanitize(std::string_view text, size_t max = 128);
// "urn:schemas-upnp-org:device:InternetGatewayDevice:1" -> "InternetGatewayDevice:1" (sanitized);
// "" when `urn` has no type and version.
std::string TypeAndVersion(std::string_view urn);
// "UPnP InternetGatewayDevice:1 with WANIPConnection:2": what the gateway really speaks.
std::string GatewayLabel(std::string_view device_type, std::string_view service_type);
// RFC 1918, CGNAT 100.64/10, loopback, link-local, documentation and benchmarking ranges, and
// anything that is not an IPv4 address: an external address behind which another NAT may sit.
bool IsReservedIpv4(std::string_view address);

}  // namespace natpilot::upnp
