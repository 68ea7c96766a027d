// libFuzzer target for GENA NOTIFY requests (upnp_events.h): the IGD's host sends them to
// natpilotd's event listener. Whatever the bytes, a result or an error; a SID is printable ASCII
// and an external address only the characters of an address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "portmap/upnp_events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace natpilot::upnp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto n = RequestLength(text); n && *n > size + kMaxNotifyBytes) std::abort();
  (void)ParseTimeout(text);
  auto notify = ParseNotify(text);
  if (!notify) return 0;
  for (unsigned char c : notify->sid) {
    if (c <= 0x20 || c >= 0x7f) std::abort();
  }
  if (notify->external_address) {
    if (notify->external_address->size() > 45) std::abort();
    if (notify->external_address->find_first_not_of("0123456789abcdefABCDEF.:") !=
        std::string::npos)
      std::abort();
  }
  return 0;
}
