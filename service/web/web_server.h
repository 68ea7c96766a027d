// natpilotd's HTTP side: the status page (assets embedded in the binary), the JSON it reads, one
// server-sent-event stream with every event and a fresh status after each change, the rule files,
// /metrics for Prometheus, and two admin actions (add and remove a device) that need the admin
// token in an Authorization header: never a cookie, so another site cannot act through a browser.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/api_metrics.h"
#include "api/event_bus.h"
#include "app/caller.h"
#include "app/registry.h"
#include "mapping/gateway_state.h"
#include "mapping/static_rules.h"
#include "store/store.h"

namespace natpilot::web {

struct WebContext {
  Store& store;
  Registry& registry;
  const GatewayState& gateway;
  EventBus& bus;
  const StaticRulesOptions& static_rules;
  RateLimiter& write_limit;
  const ApiMetrics& api_metrics;
  // The same authentication as the gRPC edge: changes need the admin token (a device token is
  // refused: the page acts on every device).
  const Authenticator& auth;
  // Names a browser may use in the Host header besides IP literals and "localhost"
  // (web.host_names): any other name is refused, so a DNS-rebinding page cannot read the status,
  // events or rules.
  std::vector<std::string> host_names = {};
};

// Whether a request's Host header is one this server answers: an IPv4 or [IPv6] literal or
// "localhost" (each with an optional port), or one of `names` (case-insensitive).
bool AllowedHost(std::string_view host, const std::vector<std::string>& names);

// Limits of the HTTP side (exhaustion by connections that never finish, or pages never closed).
inline constexpr size_t kWorkers = 12;            // requests served at once
inline constexpr size_t kQueuedConnections = 32;  // accepted and waiting for a worker
inline constexpr size_t kStreams = 8;             // open status pages
inline constexpr size_t kStreamsPerAddress = 4;
inline constexpr size_t kStreamBacklog =
    1000;  // events waiting for a slow page; older ones dropped

class WebServer {
 public:
  WebServer(WebContext ctx, std::string listen);
  ~WebServer();
  // Throws std::runtime_error when the address cannot be bound.
  void Start();
  void Stop();
  int port() const { return port_; }
  // Serves the requests in `input` (a connection's bytes, keep-alive included) as if they came
  // from `remote`, and returns what would have been written back: the routes, the Host check, the
  // admin actions and their limits, without a socket. The door of the web request fuzz target;
  // usable before Start (a streamed page then ends after its headers).
  std::string ServeBytes(std::string_view input, const std::string& remote);

 private:
  // httplib's own request handling, reachable without a socket (ServeBytes).
  class HttpServer final : public httplib::Server {
   public:
    bool ServeOne(httplib::Stream& stream, bool& closed) {
      return process_request(stream, false, closed, nullptr);
    }
  };

  struct Client;
  void Routes();
  std::string StatusText();
  std::string Metrics();
  void OnEvents(const std::vector<Event>& events);

  WebContext ctx_;
  std::string listen_;
  HttpServer http_;
  std::thread thread_;
  int port_ = 0;
  uint64_t subscription_ = 0;
  std::mutex clients_mu_;
  std::set<std::shared_ptr<Client>> clients_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> last_state_loss_{0};
};

}  // namespace natpilot::web
