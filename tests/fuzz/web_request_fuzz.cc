// libFuzzer target for the status page's HTTP side (web_server.h): the bytes of one connection
// from the LAN (request lines, headers, routes, query strings, JSON bodies of the admin actions,
// keep-alive), served by the real routes over a real store (in memory). Whatever the bytes:
// every answer is an HTTP response, a JSON answer is valid JSON (strict UTF-8), nothing escapes
// as an exception, and every registered device is one the API would accept.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/api_metrics.h"
#include "app/registry.h"
#include "app/tokens.h"
#include "core/text.h"
#include "core/validate.h"
#include "mapping/reconciler.h"
#include "store/sqlite_store.h"
#include "web/web_server.h"

namespace {

using namespace natpilot;

// The token the seeds use for the admin actions (POST and DELETE /api/devices).
constexpr const char* kAdminToken = "npa_fuzz-admin-token";

struct Daemon {
  SqliteStore store{StoreOptions{":memory:"}};
  EventBus bus;
  Reconciler reconciler{store, std::vector<PortMapper*>{}, ReconcilerOptions{},
                        [] { return Clock::now(); }};
  Registry registry{store, Policy{}, PortPlan{}, [] { return Clock::now(); }, nullptr};
  StaticRulesOptions rules{rules::RouterParams{}, ""};
  // A frozen clock: the burst, then every write is limited (as a flood would be).
  RateLimiter limit{1, 200, [] { return RateLimiter::Clock::time_point{}; }};
  ApiMetrics metrics;
  Authenticator auth{store, AuthOptions{HashToken(kAdminToken), false}};
  web::WebServer web{
      web::WebContext{
          store, registry, reconciler, bus, rules, limit, metrics, auth, {"natpilot.lan"}},
      "127.0.0.1:0"};
  Daemon() {
    store.SetEventListener([this](const std::vector<Event>& events) { bus.Publish(events); });
  }
};

// The headers and body of each response in `out` (keep-alive: several, one after another). A
// response to HEAD has a Content-Length but no body: the next response (or nothing) follows.
void CheckResponses(std::string_view out) {
  while (!out.empty()) {
    if (out.substr(0, 9) != "HTTP/1.1 ") std::abort();
    const size_t head_end = out.find("\r\n\r\n");
    if (head_end == std::string_view::npos) std::abort();
    const std::string_view head = out.substr(0, head_end);
    std::string_view rest = out.substr(head_end + 4);
    size_t length = 0;
    if (auto at = head.find("Content-Length: "); at != std::string_view::npos) {
      length = std::strtoul(std::string(head.substr(at + 16, 12)).c_str(), nullptr, 10);
    }
    if (rest.empty() || rest.substr(0, 9) == "HTTP/1.1 ") length = 0;  // HEAD
    if (length > rest.size()) std::abort();
    const std::string_view body = rest.substr(0, length);
    // A Range request gets a slice of a JSON body: only whole bodies must parse.
    const bool whole =
        head.find("Content-Range") == std::string_view::npos && head.substr(9, 3) != "206";
    if (whole && length > 0 &&
        head.find("Content-Type: application/json") != std::string_view::npos &&
        !nlohmann::json::accept(body)) {
      std::abort();  // the status page would stop on it
    }
    out = rest.substr(length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Daemon* d = new Daemon();  // one daemon for every input, as a long-running one would be
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckResponses(d->web.ServeBytes(in, "192.168.1.50"));
  for (const Device& dev : d->store.ListDevices()) {
    auto address = ParseIpv4Unicast(dev.address, "address");
    if (!ValidateDeviceName(dev.name) || !address || *address != dev.address) std::abort();
    if (!UnsafeTextReason(dev.description).empty()) std::abort();
  }
  return 0;
}
