// libFuzzer target for natpilot's own readers of what any LAN host serves: UPnP root descriptions
// (upnp_description.h) and the HTTP answers around them (upnp_http.h). Whatever the bytes, a result
// or an error, and every text field and resolved URL printable ASCII.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "portmap/upnp_description.h"
#include "portmap/upnp_http.h"

namespace {

void CheckPrintable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace natpilot::upnp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto answer = ParseHttpAnswer(text); answer && answer->body.size() > size) std::abort();
  auto d = ParseRootDescription(text);
  if (!d) return 0;
  CheckPrintable(d->friendly_name);
  CheckPrintable(d->device_type);
  CheckPrintable(d->url_base);
  const std::string base =
      d->url_base.empty() ? "http://192.168.1.1:5000/rootDesc.xml" : d->url_base;
  for (const ServiceDescription& s : d->WanConnections()) {
    CheckPrintable(s.control_url);
    const std::string url = ResolveUrl(base, s.control_url);
    CheckPrintable(url);
    if (!url.empty() && !ParseHttpUrl(url)) std::abort();  // a resolved URL always parses
    CheckPrintable(GatewayLabel(d->device_type, s.service_type));
  }
  return 0;
}
