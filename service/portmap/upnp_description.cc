#include "portmap/upnp_description.h"

#include <arpa/inet.h>

#include <cstring>

namespace natpilot::upnp {
namespace {

constexpr size_t kMaxDepth = 32;
constexpr size_t kMaxDevices = 64;
constexpr size_t kMaxServices = 256;
constexpr size_t kMaxText = 1024;  // one element's text; a longer URL is not a usable URL

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "s:Envelope" -> "Envelope": descriptions use a default namespace, some routers a prefix.
std::string_view LocalName(std::string_view name) {
  const auto colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// Appends `raw` with the five XML entities and character references decoded; a reference outside
// ASCII becomes '?' (nothing natpilot reads needs more).
void AppendDecoded(std::string& out, std::string_view raw) {
  for (size_t i = 0; i < raw.size() && out.size() < kMaxText; ++i) {
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    const auto semi = raw.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += '&';
      continue;
    }
    const std::string_view ent = raw.substr(i + 1, semi - i - 1);
    char c = '?';
    if (ent == "amp")
      c = '&';
    else if (ent == "lt")
      c = '<';
    else if (ent == "gt")
      c = '>';
    else if (ent == "quot")
      c = '"';
    else if (ent == "apos")
      c = '\'';
    else if (StartsWith(ent, "#")) {
      const bool hex = StartsWith(ent, "#x") || StartsWith(ent, "#X");
      const std::string digits(ent.substr(hex ? 2 : 1));
      char* end = nullptr;
      const long v = digits.empty() ? -1 : std::strtol(digits.c_str(), &end, hex ? 16 : 10);
      if (end != nullptr && *end == '\0' && v > 0 && v < 0x80) c = static_cast<char>(v);
    }
    out += c;
    i = semi;
  }
}

std::string Trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

bool IsUrlText(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// The parse state: the open elements, and the devices and the service being read.
struct Builder {
  struct Device {
    std::string type, friendly, manufacturer, model, udn;
  };
  RootDescription out;
  std::vector<std::string> open;  // local names of the open elements
  std::vector<Device> devices;    // the open devices, innermost last
  std::optional<ServiceDescription> service;
  std::string text;  // the innermost open element's text so far
  size_t devices_seen = 0;
  bool saw_root = false;

  std::string_view Parent() const {
    if (open.size() < 2) return {};
    return open[open.size() - 2];  // a view of the element, never of a temporary
  }

  Result<void> Start(std::string_view name) {
    if (open.size() >= kMaxDepth)
      return Fail(Errc::kInvalidArgument, "description nested too deep");
    open.emplace_back(name);
    text.clear();
    if (name == "root" && open.size() == 1) saw_root = true;
    if (name == "device") {
      if (++devices_seen > kMaxDevices) return Fail(Errc::kInvalidArgument, "too many devices");
      devices.emplace_back();
    }
    if (name == "service" && !devices.empty()) service.emplace();
    return {};
  }

  Result<void> End(std::string_view name) {
    if (open.empty() || open.back() != name) {
      return Fail(Errc::kInvalidArgument, "unbalanced tag </" + Sanitize(name, 40) + ">");
    }
    const std::string value = Trim(text);
    const std::string_view parent = Parent();
    if (parent == "device" && !devices.empty()) {
      Device& d = devices.back();
      if (name == "deviceType")
        d.type = Sanitize(value);
      else if (name == "friendlyName")
        d.friendly = Sanitize(value, 64);
      else if (name == "manufacturer")
        d.manufacturer = Sanitize(value, 64);
      else if (name == "modelName")
        d.model = Sanitize(value, 64);
      else if (name == "UDN")
        d.udn = Sanitize(value);
    } else if (parent == "service" && service) {
      if (name == "serviceType")
        service->service_type = Sanitize(value);
      else if (name == "controlURL")
        service->control_url = IsUrlText(value) ? value : "";
      else if (name == "eventSubURL")
        service->event_sub_url = IsUrlText(value) ? value : "";
    } else if (parent == "root" && name == "URLBase" && IsUrlText(value)) {
      out.url_base = value;
    }
    if (name == "service" && service) {
      service->device_type = devices.empty() ? "" : devices.back().type;
      if (!service->control_url.empty() && out.services.size() < kMaxServices) {
        out.services.push_back(std::move(*service));
      }
      service.reset();
    }
    if (name == "device" && !devices.empty()) EndDevice();
    open.pop_back();
    text.clear();
    return {};
  }

  void EndDevice() {
    Device d = std::move(devices.back());
    devices.pop_back();
    if (out.device_type.find(":InternetGatewayDevice:") == std::string::npos &&
        (devices.empty() || d.type.find(":InternetGatewayDevice:") != std::string::npos)) {
      out.device_type = d.type;
    }
    if (devices.empty()) {  // the root device
      out.friendly_name = d.friendly;
      out.manufacturer = d.manufacturer;
      out.model_name = d.model;
      out.udn = d.udn;
    }
  }
};

}  // namespace

std::vector<ServiceDescription> RootDescription::WanConnections() const {
  std::vector<ServiceDescription> out;
  for (const auto& s : services) {
    if (s.service_type.find(":service:WANIPConnection:") != std::string::npos ||
        s.service_type.find(":service:WANPPPConnection:") != std::string::npos) {
      out.push_back(s);
    }
  }
  return out;
}

Result<RootDescription> ParseRootDescription(std::string_view xml) {
  if (xml.size() > kMaxDescriptionBytes) {
    return Fail(Errc::kInvalidArgument,
                "description larger than " + std::to_string(kMaxDescriptionBytes) + " bytes");
  }
  Builder b;
  size_t i = 0;
  while (i < xml.size()) {
    const size_t lt = xml.find('<', i);
    if (lt == std::string_view::npos) break;
    if (b.text.size() < kMaxText) AppendDecoded(b.text, xml.substr(i, lt - i));
    const std::string_view rest = xml.substr(lt);
    size_t end = std::string_view::npos;  // index in `rest` just past the markup
    if (StartsWith(rest, "<!--")) {
      if (auto e = rest.find("-->"); e != std::string_view::npos) end = e + 3;
    } else if (StartsWith(rest, "<![CDATA[")) {
      if (auto e = rest.find("]]>"); e != std::string_view::npos) {
        if (b.text.size() < kMaxText) b.text.append(rest.substr(9, std::min(e - 9, kMaxText)));
        end = e + 3;
      }
    } else if (StartsWith(rest, "<?") || StartsWith(rest, "<!")) {
      if (auto e = rest.find('>'); e != std::string_view::npos) end = e + 1;
    } else if (auto e = rest.find('>'); e != std::string_view::npos) {
      end = e + 1;
      std::string_view tag = rest.substr(1, e - 1);
      const bool closing = StartsWith(tag, "/");
      const bool empty = !closing && !tag.empty() && tag.back() == '/';
      if (closing) tag.remove_prefix(1);
      if (empty) tag.remove_suffix(1);
      const std::string_view name = LocalName(tag.substr(0, tag.find_first_of(" \t\r\n")));
      if (name.empty()) return Fail(Errc::kInvalidArgument, "a tag without a name");
      if (!closing) {
        if (auto r = b.Start(name); !r) return tl::unexpected(r.error());
      }
      if (closing || empty) {
        if (auto r = b.End(name); !r) return tl::unexpected(r.error());
      }
    }
    if (end == std::string_view::npos) return Fail(Errc::kInvalidArgument, "unterminated markup");
    i = lt + end;
  }
  if (!b.saw_root) return Fail(Errc::kInvalidArgument, "not a UPnP description (no <root>)");
  if (!b.open.empty())
    return Fail(Errc::kInvalidArgument,
                "description ends inside <" + Sanitize(b.open.back(), 40) + ">");
  return std::move(b.out);
}

std::optional<HttpUrl> ParseHttpUrl(std::string_view url) {
  if (!StartsWith(url, "http://") || !IsUrlText(url)) return std::nullopt;
  std::string_view rest = url.substr(7);
  const size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo tricks
  size_t port_colon = std::string_view::npos;
  if (StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port_colon = close + 1;
    }
  } else {
    port_colon = authority.find(':');
  }
  out.host = std::string(authority.substr(0, port_colon));
  if (out.host.empty()) return std::nullopt;
  if (port_colon != std::string_view::npos) {
    const std::string digits(authority.substr(port_colon + 1));
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    const long port = std::strtol(digits.c_str(), nullptr, 10);
    if (port < 1 || port > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string ResolveUrl(std::string_view base, std::string_view ref) {
  if (StartsWith(ref, "http://")) return ParseHttpUrl(ref) ? std::string(ref) : "";
  if (ref.find("://") != std::string_view::npos || !IsUrlText(ref)) return "";
  auto b = ParseHttpUrl(base);
  if (!b) return "";
  const std::string origin = "http://" + b->host + ":" + std::to_string(b->port);
  if (StartsWith(ref, "/")) return origin + std::string(ref);
  std::string dir = b->path.substr(0, b->path.find_first_of("?#"));
  dir = dir.substr(0, dir.rfind('/') + 1);
  return origin + dir + std::string(ref);
}

std::string Sanitize(std::string_view text, size_t max) {
  std::string out;
  for (unsigned char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return out;
}

std::string TypeAndVersion(std::string_view urn) {
  const auto last = urn.rfind(':');
  if (last == std::string_view::npos || last == 0) return "";
  const auto before = urn.rfind(':', last - 1);
  const std::string_view tv = before == std::string_view::npos ? urn : urn.substr(before + 1);
  if (tv.size() <= 1 || tv.front() == ':' || tv.back() == ':') return "";
  return Sanitize(tv, 64);
}

std::string GatewayLabel(std::string_view device_type, std::string_view service_type) {
  const std::string device = TypeAndVersion(device_type);
  const std::string service = TypeAndVersion(service_type);
  return "UPnP " + (device.empty() ? std::string("device of unknown type") : device) + " with " +
         (service.empty() ? std::string("an unnamed connection service") : service);
}

bool IsReservedIpv4(std::string_view address) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(address).c_str(), &a) != 1) return true;
  const uint32_t v = ntohl(a.s_addr);
  struct Range {
    uint32_t net;
    int prefix;
  };
  static constexpr Range kReserved[] = {
      {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},  {0xa9fe0000, 16},
      {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24}, {0xc0a80000, 16}, {0xc6120000, 15},
      {0xc6336400, 24}, {0xcb007100, 24}, {0xe0000000, 4},  {0xf0000000, 4},
  };
  for (const Range& r : kReserved) {
    const uint32_t mask = ~uint32_t(0) << (32 - r.prefix);
    if ((v & mask) == r.net) return true;
  }
  return false;
}

}  // namespace natpilot::upnp
