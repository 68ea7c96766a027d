#include "portmap/upnp_mapper.h"

#include <arpa/inet.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include <cstring>

#include "core/text.h"
#include "core/validate.h"
#include "portmap/netutil.h"
#include "portmap/upnp_discovery.h"

namespace natpilot {

std::string_view ToString(GatewayInfo::Status s) {
  switch (s) {
    case GatewayInfo::Status::kSearching:
      return "searching";
    case GatewayInfo::Status::kReady:
      return "ready";
    case GatewayInfo::Status::kNotConnected:
      return "not-connected";
    case GatewayInfo::Status::kNotFound:
      return "not-found";
  }
  return "unknown";
}

struct UpnpMapper::Igd {
  upnp::ChosenIgd chosen;
  std::string external_address;  // the probe's; whatever refreshes it updates it here
  const char* control() const { return chosen.control_url.c_str(); }
  const char* service() const { return chosen.service_type.c_str(); }
};

namespace {

const char* Proto(Transport t) { return t == Transport::kTcp ? "TCP" : "UDP"; }

Error UpnpError(int code, const std::string& what) {
  return Error{MakeUpnpError(code), what + ": " + MakeUpnpError(code).message()};
}

// What the IGD's table says about an entry is foreign text (any LAN host sets the description with
// AddPortMapping): the internal client is taken as an address only in canonical dotted form, the
// description made safe (UTF-8, no control characters, 80 bytes).
std::string Client(const char* s) {
  auto a = ParseIpv4Unicast(std::string_view(s, ::strnlen(s, 63)), "internal client");
  return a ? *a : SafeText(std::string_view(s, ::strnlen(s, 63)), 64);
}
std::string Description(const char* s, size_t size) {
  return SafeText(std::string_view(s, ::strnlen(s, size - 1)), 80);
}

uint16_t ToPort(const char* s) {
  const long v = std::strtol(s, nullptr, 10);
  return v > 0 && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

}  // namespace

UpnpMapper::UpnpMapper(UpnpOptions options) : options_(std::move(options)) {}
UpnpMapper::~UpnpMapper() = default;

GatewayInfo UpnpMapper::Probe() {
  GatewayInfo info = Discover();
  if (event_url_listener_) event_url_listener_(igd_ ? igd_->chosen.event_url : std::string());
  return info;
}

GatewayInfo UpnpMapper::Discover() {
  igd_.reset();
  upnp::IgdPolicy policy;
  policy.gateway = options_.gateway;
  if (policy.gateway.empty()) {
    if (auto gw = DefaultGateway()) policy.gateway = *gw;
  }
  policy.configured_url = options_.root_desc_url;
  policy.lan = HostLanSubnets();
  std::vector<std::string> urls;
  if (!options_.root_desc_url.empty()) {
    urls.push_back(options_.root_desc_url);
  } else {
    // On a host with several interfaces, SSDP must leave through the LAN one: the configured
    // interface, else the address that faces the gateway.
    std::string lan_if = options_.multicast_interface;
    if (lan_if.empty() && !policy.gateway.empty()) {
      if (auto local = LocalAddressTowards(policy.gateway)) lan_if = *local;
    }
    urls = upnp::DiscoverDescriptionUrls(options_.discovery_timeout, lan_if);
    if (urls.empty()) {
      GatewayInfo info;
      info.protocol = GatewayProtocol::kUpnpIgd;
      info.status = GatewayInfo::Status::kNotFound;
      info.detail = "no UPnP device answered SSDP discovery within " +
                    std::to_string(options_.discovery_timeout.count()) + " ms";
      return info;
    }
  }
  upnp::IgdChoice choice = upnp::ChooseIgd(urls, policy);
  if (choice.igd) {
    auto igd = std::make_unique<Igd>();
    igd->chosen = std::move(*choice.igd);
    igd->external_address = igd->chosen.external_address;
    igd_ = std::move(igd);
  }
  return std::move(choice.info);
}

Result<void> UpnpMapper::Ready() const {
  if (!igd_) return Fail(Errc::kUnavailable, "no UPnP gateway has been found yet");
  return {};
}

Result<Lease> UpnpMapper::Map(const MapRequest& req) {
  if (auto r = Ready(); !r) return tl::unexpected(r.error());
  const std::string ext = std::to_string(req.external_port);
  const std::string in = std::to_string(req.internal_port);
  Seconds lifetime = req.lifetime;
  // IGDv2 offers AddAnyPortMapping: the gateway answers with the port it reserved instead of a
  // bare 718 when the asked one is taken. Port-preserving or nothing, so another port is given
  // back and reported as the conflict it is.
  const bool v2 = std::strstr(igd_->service(), "WANIPConnection:2") != nullptr;
  uint16_t reserved = req.external_port;
  auto add = [&](Seconds lease) {
    const std::string l = std::to_string(lease.count());
    if (v2) {
      char port[8] = {0};
      const int r = UPNP_AddAnyPortMapping(
          igd_->control(), igd_->service(), ext.c_str(), in.c_str(), req.internal_address.c_str(),
          req.description.c_str(), Proto(req.transport), nullptr, l.c_str(), port);
      if (r == UPNPCOMMAND_SUCCESS) reserved = ToPort(port);
      return r;
    }
    return UPNP_AddPortMapping(igd_->control(), igd_->service(), ext.c_str(), in.c_str(),
                               req.internal_address.c_str(), req.description.c_str(),
                               Proto(req.transport), nullptr, l.c_str());
  };
  int r = add(lifetime);
  // 725 OnlyPermanentLeasesSupported (IGD v1 spec, WANIPConnection 2.4.16): some routers take only
  // lease 0; map permanently and keep renewing by re-adding, so a removal still deletes it.
  if (r == upnp::kOnlyPermanentLeasesSupported) {
    lifetime = Seconds(0);
    r = add(lifetime);
  }
  // 402 InvalidArgs to a lease duration: some IGDv1 routers accept only 0 (libtorrent and
  // miniupnpc's upnpc retry the same way); map permanently, renewals re-add it.
  if (r == upnp::kInvalidArgs && lifetime.count() > 0) {
    lifetime = Seconds(0);
    r = add(lifetime);
  }
  if (r != UPNPCOMMAND_SUCCESS) {
    return tl::unexpected(UpnpError(r, std::string(v2 ? "AddAnyPortMapping " : "AddPortMapping ") +
                                           ext + "/" + Proto(req.transport) + " to " +
                                           req.internal_address + ":" + in));
  }
  if (reserved != req.external_port) {
    const std::string other = std::to_string(reserved);
    UPNP_DeletePortMapping(igd_->control(), igd_->service(), other.c_str(), Proto(req.transport),
                           nullptr);
    return tl::unexpected(Error{MakeUpnpError(upnp::kConflictInMappingEntry),
                                "AddAnyPortMapping " + ext + "/" + Proto(req.transport) +
                                    ": the gateway reserved port " + other +
                                    " instead (the asked one is taken); given back"});
  }
  Lease lease;
  lease.protocol = GatewayProtocol::kUpnpIgd;
  lease.transport = req.transport;
  lease.internal_address = req.internal_address;
  lease.internal_port = req.internal_port;
  lease.external_address = igd_->external_address;
  lease.external_port = req.external_port;
  lease.lifetime = lifetime;
  return lease;
}

Result<void> UpnpMapper::Unmap(const MapRequest& request) {
  if (auto r = Ready(); !r) return r;
  const Transport transport = request.transport;
  const std::string ext = std::to_string(request.external_port);
  const int r = UPNP_DeletePortMapping(igd_->control(), igd_->service(), ext.c_str(),
                                       Proto(transport), nullptr);
  if (r == UPNPCOMMAND_SUCCESS || r == upnp::kNoSuchEntryInArray) return {};
  return tl::unexpected(UpnpError(r, "DeletePortMapping " + ext + "/" + Proto(transport)));
}

Result<std::optional<GatewayEntry>> UpnpMapper::GetEntry(Transport transport,
                                                         uint16_t external_port) {
  if (auto r = Ready(); !r) return tl::unexpected(r.error());
  const std::string ext = std::to_string(external_port);
  char client[64] = {0}, port[16] = {0}, desc[96] = {0}, enabled[8] = {0}, duration[24] = {0};
  const int r = UPNP_GetSpecificPortMappingEntry(igd_->control(), igd_->service(), ext.c_str(),
                                                 Proto(transport), nullptr, client, port, desc,
                                                 enabled, duration);
  if (r == upnp::kNoSuchEntryInArray) return std::optional<GatewayEntry>();
  if (r != UPNPCOMMAND_SUCCESS) {
    return tl::unexpected(
        UpnpError(r, "GetSpecificPortMappingEntry " + ext + "/" + Proto(transport)));
  }
  GatewayEntry e{transport,
                 external_port,
                 Client(client),
                 ToPort(port),
                 Description(desc, sizeof desc),
                 Seconds(std::strtol(duration, nullptr, 10))};
  return std::optional<GatewayEntry>(std::move(e));
}

Result<std::vector<GatewayEntry>> UpnpMapper::ListEntries() {
  if (auto r = Ready(); !r) return tl::unexpected(r.error());
  std::vector<GatewayEntry> out;
  constexpr int kMaxEntries = 65536 * 2;
  for (int i = 0; i < kMaxEntries; ++i) {
    char ext[16] = {0}, client[64] = {0}, port[16] = {0}, proto[8] = {0}, desc[96] = {0};
    char enabled[8] = {0}, rhost[72] = {0}, duration[24] = {0};
    const std::string index = std::to_string(i);
    const int r =
        UPNP_GetGenericPortMappingEntry(igd_->control(), igd_->service(), index.c_str(), ext,
                                        client, port, proto, desc, enabled, rhost, duration);
    // 713 SpecifiedArrayIndexInvalid ends the table; some gateways answer 714 or 402 instead.
    if (r == 713 || r == upnp::kNoSuchEntryInArray || r == upnp::kInvalidArgs) break;
    if (r != UPNPCOMMAND_SUCCESS) {
      return tl::unexpected(UpnpError(r, "GetGenericPortMappingEntry " + index));
    }
    const auto transport = std::strcmp(proto, "TCP") == 0 ? Transport::kTcp : Transport::kUdp;
    out.push_back(GatewayEntry{transport, ToPort(ext), Client(client), ToPort(port),
                               Description(desc, sizeof desc),
                               Seconds(std::strtol(duration, nullptr, 10))});
  }
  return out;
}

Result<std::string> UpnpMapper::Heartbeat() {
  if (auto r = Ready(); !r) return tl::unexpected(r.error());
  char ext[40] = {0};
  const int r = UPNP_GetExternalIPAddress(igd_->control(), igd_->service(), ext);
  if (r != UPNPCOMMAND_SUCCESS) return tl::unexpected(UpnpError(r, "GetExternalIPAddress"));
  // What the IGD says is foreign text: only a dotted IPv4 address is taken.
  in_addr parsed{};
  if (::inet_pton(AF_INET, ext, &parsed) != 1) return std::string();
  igd_->external_address = ext;
  return std::string(ext);
}

}  // namespace natpilot
