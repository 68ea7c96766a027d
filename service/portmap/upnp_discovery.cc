#include "portmap/upnp_discovery.h"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/miniwget.h>
#include <miniupnpc/upnpcommands.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include "portmap/upnp_description.h"
#include "portmap/upnp_http.h"

namespace natpilot::upnp {
namespace {

struct Fetched {
  std::string body;
  std::string local_address;  // ours, towards the host that answered
};

// A description: a GET bounded in time and bytes (upnp_http.h) from an IPv4 host, which every
// SSDP answer natpilot reads names; a host name (only gateway.root_desc_url can bring one, since
// SSDP answers are read only from hosts on our LAN subnets or at the gateway's address) goes
// through miniupnpc's miniwget.
Result<Fetched> Fetch(const std::string& url, std::chrono::milliseconds timeout) {
  auto parsed = ParseHttpUrl(url);
  if (!parsed) return Fail(Errc::kInvalidArgument, "not a plain http:// URL");
  in_addr a{};
  if (inet_pton(AF_INET, parsed->host.c_str(), &a) == 1) {
    auto got = HttpGet(*parsed, timeout, kMaxDescriptionBytes);
    if (!got) return tl::unexpected(got.error());
    if (got->status != 200)
      return Fail(Errc::kUnavailable, "HTTP status " + std::to_string(got->status));
    if (got->body.size() > kMaxDescriptionBytes)
      return Fail(Errc::kInvalidArgument, "description too large");
    return Fetched{std::move(got->body), Sanitize(got->local_address, 63)};
  }
  int size = 0, status = 0;
  char local[64] = {0};
  std::unique_ptr<char, decltype(&std::free)> body(
      static_cast<char*>(miniwget_getaddr(url.c_str(), &size, local, sizeof local, 0, &status)),
      &std::free);
  if (!body) return Fail(Errc::kUnavailable, "no answer");
  if (status != 200) return Fail(Errc::kUnavailable, "HTTP status " + std::to_string(status));
  if (size < 0 || static_cast<size_t>(size) > kMaxDescriptionBytes) {
    return Fail(Errc::kInvalidArgument, "description too large");
  }
  local[sizeof local - 1] = '\0';
  return Fetched{std::string(body.get(), static_cast<size_t>(size)), Sanitize(local, 63)};
}

bool OnLan(const std::string& host, const std::vector<Subnet>& lan) {
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  const uint32_t v = ntohl(a.s_addr);
  return std::any_of(lan.begin(), lan.end(), [v](const Subnet& s) { return s.contains(v); });
}

std::string Host(const std::string& url) {
  auto u = ParseHttpUrl(url);
  return u ? u->host : "";
}

void Describe(IgdFound& f, const RootDescription& d) {
  f.friendly_name = d.friendly_name;
  f.model = d.manufacturer.empty() ? d.model_name
            : d.model_name.empty() ? d.manufacturer
                                   : d.manufacturer + " " + d.model_name;
  f.device_type = TypeAndVersion(d.device_type);
}

constexpr size_t kMaxControlUrl = 256;

struct Picked {
  std::optional<ChosenIgd> igd;
  std::string why_not;  // when none: each connection's status, for people
};

// The first connection service (document order) on a trusted host that says Connected and
// reports an external address.
Picked PickConnection(const std::string& url, const RootDescription& d,
                      const std::function<bool(const std::string&)>& trusted) {
  Picked out;
  const std::string base = d.url_base.empty() ? url : d.url_base;
  for (const ServiceDescription& s : d.WanConnections()) {
    const std::string control = ResolveUrl(base, s.control_url);
    const std::string name = TypeAndVersion(s.service_type);
    if (!out.why_not.empty()) out.why_not += ", ";
    // miniupnpc builds each SOAP request in fixed buffers (it kept 128 bytes of a URL itself).
    if (control.size() > kMaxControlUrl) {
      out.why_not +=
          name + " (control URL longer than " + std::to_string(kMaxControlUrl) + " bytes)";
      continue;
    }
    if (control.empty() || !trusted(Host(control))) {
      out.why_not += name + " at " + Sanitize(control.empty() ? s.control_url : control, 160) +
                     " (not the gateway: never contacted)";
      continue;
    }
    char status[64] = {0}, last_error[64] = {0};
    unsigned uptime = 0;
    const int r =
        UPNP_GetStatusInfo(control.c_str(), s.service_type.c_str(), status, &uptime, last_error);
    status[sizeof status - 1] = '\0';
    if (r != UPNPCOMMAND_SUCCESS || std::strcmp(status, "Connected") != 0) {
      out.why_not += name + " " +
                     (r == UPNPCOMMAND_SUCCESS ? Sanitize(status, 63) : MakeUpnpError(r).message());
      continue;
    }
    char ext[40] = {0};
    const int e = UPNP_GetExternalIPAddress(control.c_str(), s.service_type.c_str(), ext);
    ext[sizeof ext - 1] = '\0';
    in_addr parsed{};
    if (e != UPNPCOMMAND_SUCCESS || inet_pton(AF_INET, ext, &parsed) != 1) {
      out.why_not +=
          name + " Connected but no external address (" +
          (e == UPNPCOMMAND_SUCCESS ? "'" + Sanitize(ext, 39) + "'" : MakeUpnpError(e).message()) +
          ")";
      continue;
    }
    // Events only from the host SOAP goes to: a description may name any URL.
    std::string events = s.event_sub_url.empty() ? "" : ResolveUrl(base, s.event_sub_url);
    if (events.size() > kMaxControlUrl || Host(events) != Host(control)) events.clear();
    out.igd = ChosenIgd{url, control, s.service_type, events, d.device_type, ext};
    return out;
  }
  if (out.why_not.empty()) out.why_not = "no WANIPConnection or WANPPPConnection service";
  return out;
}

// Fills `info` for the IGD in use.
void Ready(GatewayInfo& info, const ChosenIgd& igd, const std::string& local) {
  info.status = GatewayInfo::Status::kReady;
  info.control_url = igd.control_url;
  info.identity = igd.root_desc_url;
  info.address = Host(igd.control_url);
  info.local_address = local;
  info.external_address = igd.external_address;
  std::string warning;
  // A private or reserved external address (RFC 1918, CGNAT 100.64/10, documentation ranges):
  // forwards work on this gateway, but an upstream NAT may still block them; the user must hear it.
  if (IsReservedIpv4(igd.external_address)) {
    warning = "; warning: external address " + igd.external_address +
              " is private or reserved, so another NAT upstream (double NAT or carrier-grade NAT) "
              "may still block incoming traffic";
  }
  info.detail =
      GatewayLabel(igd.device_type, igd.service_type) + " at " + igd.control_url + warning;
}

// Another host's IGD: reported, never used. Its description is read (a GET, never SOAP) only
// when the host is on one of our LAN subnets, and for at most max_other_reads of them.
void ReportOther(IgdFound& f, const std::string& url, const IgdPolicy& policy, size_t& reads) {
  const std::string host = Host(url);
  const bool lan = OnLan(host, policy.lan);
  if (lan && reads < policy.max_other_reads) {
    ++reads;
    if (auto got = Fetch(url, policy.other_description_timeout)) {
      if (auto d = ParseRootDescription(got->body)) Describe(f, *d);
    }
  }
  const std::string gw = policy.gateway.empty() ? "unknown" : policy.gateway;
  f.reason = lan ? "another LAN host, not the gateway (" + gw +
                       "); used only when gateway.root_desc_url names it"
                 : "its description URL names a host that is neither the gateway (" + gw +
                       ") nor on the LAN; never contacted";
}

// Why no IGD is in use, when none is.
void Explain(GatewayInfo& info, const std::string& not_connected, const std::string& unusable,
             const std::string& gateway) {
  if (!not_connected.empty()) {
    info.status = GatewayInfo::Status::kNotConnected;
    info.detail = "a UPnP IGD answered at the gateway, but " + not_connected +
                  "; mappings wait until it is up";
  } else if (!unusable.empty()) {
    info.detail = "no usable UPnP IGD at the gateway (" + unusable + ")";
  } else if (!info.other_igds.empty()) {
    info.detail = "no UPnP IGD at the gateway (" +
                  (gateway.empty() ? std::string("unknown: no default route") : gateway) + "); " +
                  std::to_string(info.other_igds.size()) +
                  " found on other hosts, not used (natpilot gateway lists them)";
  } else {
    info.detail = "no UPnP internet gateway device found";
  }
}

}  // namespace

std::vector<std::string> DiscoverDescriptionUrls(std::chrono::milliseconds timeout,
                                                 const std::string& multicast_interface) {
  int error = 0;
  const char* mif = multicast_interface.empty() ? nullptr : multicast_interface.c_str();
  UPNPDev* devices = upnpDiscover(static_cast<int>(timeout.count()), mif, nullptr,
                                  UPNP_LOCAL_PORT_ANY, 0, 2, &error);
  std::vector<std::string> out;
  // Bounded, but not to the first few: a LAN host answering many times must not push the
  // gateway's answer out (ChooseIgd puts the gateway's first and caps the others).
  for (UPNPDev* d = devices; d != nullptr && out.size() < 256; d = d->pNext) {
    if (d->descURL == nullptr) continue;
    std::string url(d->descURL, strnlen(d->descURL, 1024));
    if (std::find(out.begin(), out.end(), url) == out.end()) out.push_back(std::move(url));
  }
  freeUPNPDevlist(devices);
  return out;
}

IgdChoice ChooseIgd(const std::vector<std::string>& description_urls, const IgdPolicy& policy) {
  IgdChoice out;
  GatewayInfo& info = out.info;
  info.protocol = GatewayProtocol::kUpnpIgd;
  info.status = GatewayInfo::Status::kNotFound;
  const std::string configured_host = Host(policy.configured_url);
  auto trusted = [&](const std::string& host) {
    return !host.empty() && ((!policy.gateway.empty() && host == policy.gateway) ||
                             (!configured_host.empty() && host == configured_host));
  };
  std::vector<std::string> urls = description_urls;
  const auto first_other = std::stable_partition(
      urls.begin(), urls.end(), [&](const std::string& u) { return trusted(Host(u)); });
  // At most 4 descriptions read at the gateway (3 s each at worst: a host that accepts and never
  // answers cannot hold the probe for minutes) and 28 others listed.
  const auto trusted_n = std::min<std::ptrdiff_t>(first_other - urls.begin(), 4);
  std::vector<std::string> kept(urls.begin(), urls.begin() + trusted_n);
  for (auto it = first_other; it != urls.end() && kept.size() < size_t(trusted_n) + 28; ++it)
    kept.push_back(*it);
  urls = std::move(kept);
  std::string not_connected;  // why the trusted IGDs' connections cannot be used
  std::string unusable;       // trusted hosts that are no IGD or did not answer
  // Trusted IGDs that cannot be used: listed as other IGDs only when another one is in use (else
  // the detail says why each cannot be used).
  std::vector<IgdFound> passed_over;
  size_t reads = 0;
  for (const std::string& url : urls) {
    IgdFound f;
    f.root_desc_url = Sanitize(url, 256);
    f.address = Sanitize(Host(url), 64);
    const std::string host = Host(url);
    if (!trusted(host)) {
      ReportOther(f, url, policy, reads);
      info.other_igds.push_back(std::move(f));
      continue;
    }
    f.skipped = false;
    if (out.igd) {
      f.reason = "another description at the gateway; the first connected IGD is in use";
      info.other_igds.push_back(std::move(f));
      continue;
    }
    auto got = Fetch(url, policy.description_timeout);
    auto desc = got ? ParseRootDescription(got->body)
                    : Result<RootDescription>(tl::unexpected(got.error()));
    if (!desc || desc->WanConnections().empty()) {
      f.reason = desc ? "not an internet gateway device (no WANIPConnection or WANPPPConnection)"
                      : "its description could not be read: " + Sanitize(desc.error().message, 160);
      if (desc) Describe(f, *desc);
      unusable += (unusable.empty() ? "" : "; ") + f.address + ": " + f.reason;
      passed_over.push_back(std::move(f));
      continue;
    }
    Describe(f, *desc);
    Picked picked = PickConnection(url, *desc, [&](const std::string& h) { return trusted(h); });
    if (!picked.igd) {
      f.reason = "no connected WAN connection: " + picked.why_not;
      if (!not_connected.empty()) not_connected += "; ";
      not_connected += f.reason;
      passed_over.push_back(std::move(f));
      continue;
    }
    out.igd = std::move(picked.igd);
    Ready(info, *out.igd, got->local_address);
  }
  if (out.igd) {
    for (IgdFound& f : passed_over) info.other_igds.push_back(std::move(f));
    return out;
  }
  Explain(info, not_connected, unusable, policy.gateway);
  return out;
}

}  // namespace natpilot::upnp
