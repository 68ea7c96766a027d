// natpilotd: keeps a LAN's VoIP devices reachable through the NAT gateway.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <iostream>

#include "api/auth.h"
#include "api/event_bus.h"
#include "api/server.h"
#include "app/registry.h"
#include "config/config.h"
#include "core/validate.h"
#include "identity/identity_watch.h"
#include "mapping/reconciler.h"
#include "mapping/static_rules.h"
#include "pbx/pbx_notifier.h"
#include "portmap/announce_listener.h"
#include "portmap/netutil.h"
#include "portmap/upnp_events.h"
#include "portmap/upnp_mapper.h"
#include "store/sqlite_store.h"
#include "web/web_server.h"

namespace {

using natpilot::Config;

int Run(const Config& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  natpilot::SqliteStore store(config.store);
  spdlog::info("natpilotd {} starting: database {} (schema {}), instance {}", NATPILOT_VERSION,
               config.store.path, store.SchemaVersion(), store.InstanceId());
  natpilot::EventBus bus;
  store.SetEventListener(
      [&bus](const std::vector<natpilot::Event>& events) { bus.Publish(events); });

  auto now = [] { return natpilot::Clock::now(); };
  // GENA: the IGD's ExternalIPAddress events (started below, before the reconciler). Declared
  // first: a UPnP probe may still tell it the event URL while the reconciler shuts down.
  natpilot::UpnpEvents upnp_events;
  natpilot::PcpMapper pcp(config.pcp);
  natpilot::NatPmpMapper natpmp(config.natpmp);
  natpilot::UpnpMapper upnp(config.upnp);
  std::vector<natpilot::PortMapper*> mappers;
  for (natpilot::GatewayProtocol p : config.protocols) {
    if (p == natpilot::GatewayProtocol::kPcp) mappers.push_back(&pcp);
    if (p == natpilot::GatewayProtocol::kNatPmp) mappers.push_back(&natpmp);
    if (p == natpilot::GatewayProtocol::kUpnpIgd) mappers.push_back(&upnp);
  }
  natpilot::Reconciler reconciler(store, mappers, config.reconciler, now);
  natpilot::IdentityWatch identity(store, config.identity, natpilot::ProbeNeighbors, now,
                                   [&reconciler] { reconciler.Wake(); });
  natpilot::Registry registry(
      store, config.policy, config.default_plan, now,
      [&reconciler, &identity] {
        reconciler.Wake();
        identity.Wake();
      },
      natpilot::HostLanSubnets);
  std::string admin_token = config.admin_token;
  if (admin_token.empty() && (!config.listen.empty() || !config.web_listen.empty())) {
    admin_token = natpilot::LoadOrCreateAdminToken(config.admin_token_file);
  }
  if (!config.listen.empty() && config.admin_token.empty()) {
    spdlog::info("admin token for TCP callers in {}", config.admin_token_file);
  }
  natpilot::Authenticator auth(
      store, natpilot::AuthOptions{admin_token.empty() ? "" : natpilot::HashToken(admin_token),
                                   config.device_calls_from_own_address});
  natpilot::RateLimiter write_limit(config.write_rate_per_s, config.write_burst);
  if (!config.listen.empty() && !natpilot::IsLoopbackListen(config.listen) &&
      config.tls_cert_file.empty()) {
    spdlog::warn(
        "api.listen {} is not loopback and has no TLS (api.allow_insecure_tcp): tokens cross "
        "the network in clear",
        config.listen);
  }
  natpilot::RulesWriter rules_writer(store, config.static_rules, now);
  reconciler.SetAfterPass([&rules_writer] { rules_writer.Refresh(); });
  natpilot::ApiMetrics api_metrics;
  natpilot::ServerOptions server_options;
  server_options.metrics = &api_metrics;
  server_options.unix_socket = config.unix_socket;
  server_options.unix_socket_mode = config.unix_socket_mode;
  server_options.unix_socket_group = config.unix_socket_group;
  server_options.listen = config.listen;
  server_options.tls_cert_file = config.tls_cert_file;
  server_options.tls_key_file = config.tls_key_file;
  server_options.tls_client_ca_file = config.tls_client_ca_file;
  const auto configured = [&config](natpilot::GatewayProtocol p) {
    return std::find(config.protocols.begin(), config.protocols.end(), p) != config.protocols.end();
  };
  const bool upnp_events_on = configured(natpilot::GatewayProtocol::kUpnpIgd) && config.upnp.events;
  natpilot::ApiServer server(
      natpilot::ApiContext{store, registry, reconciler, bus, config.static_rules, auth, write_limit,
                           config.stun_server,
                           upnp_events_on ? std::function<std::string()>(
                                                [&upnp_events] { return upnp_events.Status(); })
                                          : std::function<std::string()>()},
      server_options);
  std::vector<natpilot::PbxTarget> pbx_targets;
  for (const natpilot::PbxConfig& p : config.pbx) {
    natpilot::PbxTarget t;
    t.device = p.device;
    natpilot::pbx::ParseFlavor(p.flavor, &t.flavor);
    t.file = p.file;
    t.rtp_file = p.rtp_file;
    t.on_change = p.on_change;
    t.hook_timeout = p.hook_timeout;
    pbx_targets.push_back(std::move(t));
  }
  natpilot::PbxNotifier pbx_notifier(
      store,
      [&] {
        return natpilot::NatViewInputs{store, reconciler.Gateway(),
                                       config.static_rules.params.wan_address,
                                       natpilot::HostLanSubnets()};
      },
      std::move(pbx_targets), now);
  const uint64_t pbx_subscription =
      bus.Subscribe([&pbx_notifier](const std::vector<natpilot::Event>& events) {
        pbx_notifier.OnEvents(events);
      });
  pbx_notifier.Start();
  server.Start();
  spdlog::info("API listening on unix:{}{}{}", config.unix_socket,
               config.listen.empty() ? "" : " and " + config.listen,
               config.tls_cert_file.empty() ? "" : " (TLS)");
  std::unique_ptr<natpilot::web::WebServer> web;
  if (!config.web_listen.empty()) {
    web = std::make_unique<natpilot::web::WebServer>(
        natpilot::web::WebContext{store, registry, reconciler, bus, config.static_rules,
                                  write_limit, api_metrics, auth, config.web_host_names},
        config.web_listen);
    web->Start();
    spdlog::info("status page on http://{}/", config.web_listen);
    if (!natpilot::IsLoopbackListen(config.web_listen)) {
      spdlog::warn(
          "web.listen {} is not loopback: the page shows the LAN's devices to that network, and "
          "the admin token for changes travels unencrypted",
          config.web_listen);
    }
  }
  // A NOTIFY's ExternalIPAddress other than the one natpilotd holds makes the reconciler ask the
  // gateway at once (the event itself is a hint, as an announcement is).
  if (upnp_events_on) {
    upnp.SetEventUrlListener([&upnp_events](const std::string& url) { upnp_events.Follow(url); });
    // UpnpEvents reads NOTIFYs only from the IGD's own host, with the current SID.
    auto started = upnp_events.Start(
        [&reconciler](const std::string&, const std::string& address) {
          const std::string held = reconciler.ExternalAddress();
          // 0.0.0.0 (a WAN without an address during a redial) or no address at all: nothing to
          // check.
          if (natpilot::ParseIpv4Unicast(address, "external address") && !held.empty() &&
              address != held) {
            reconciler.CheckExternalAddress("a UPnP event (ExternalIPAddress " + address + ")");
          }
        },
        [](const std::string& status, bool problem) {
          if (problem) {
            spdlog::warn("UPnP events: {}", status);
          } else {
            spdlog::info("UPnP events: {}", status);
          }
        });
    if (!started) spdlog::warn("UPnP events: {}", started.error().message);
  }
  reconciler.Start();
  identity.Start();
  natpilot::AnnounceListener announces;
  if (configured(natpilot::GatewayProtocol::kPcp) ||
      configured(natpilot::GatewayProtocol::kNatPmp)) {
    auto listening =
        announces.Start([&reconciler](const std::string& sender,
                                      const natpilot::AnnounceListener::Announcement& a) {
          reconciler.AnnounceFrom(sender, a.what);
        });
    if (!listening)
      spdlog::warn(
          "{}; gateway restarts and external address changes are noticed by the periodic check "
          "only",
          listening.error().message);
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  server.Shutdown();
  if (web) web->Stop();
  bus.Unsubscribe(pbx_subscription);
  pbx_notifier.Stop();
  identity.Stop();
  announces.Stop();
  reconciler.Stop();
  upnp_events.Stop();  // after the reconciler: its probes tell the event URL
  if (config.release_on_shutdown) {
    reconciler.ReleaseLeasesForShutdown(std::chrono::steady_clock::now() +
                                        std::chrono::seconds(20));
  } else {
    spdlog::info("leases stay on the gateway; they are adopted at the next start");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigwait in main; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  CLI::App app{"natpilotd: port mapping and NAT configuration for VoIP devices"};
  std::string config_file;
  bool print_config = false;
  Config config;
  std::string database, unix_socket, listen, log_level, gateway_url, interface, rules_folder;
  int64_t lease_s = 0;
  int64_t discovery_ms = 0;
  app.add_option("-c,--config", config_file, "TOML config file (see --print-config)");
  app.add_flag("--print-config", print_config, "print the default config and exit");
  app.add_option("--database", database, "SQLite database file");
  app.add_option("--unix-socket", unix_socket, "API unix socket path");
  app.add_option("--listen", listen, "API TCP address (loopback only), \"\" to turn off");
  app.add_option("--lease-lifetime", lease_s, "lease lifetime asked of the gateway, seconds");
  app.add_option("--discovery-timeout-ms", discovery_ms, "how long SSDP discovery waits, ms");
  app.add_option("--gateway-url", gateway_url, "UPnP root description URL (skips discovery)");
  app.add_option("--interface", interface, "LAN interface or address for discovery");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--rules-folder", rules_folder, "folder for the static rule files, \"\" = off");
  std::string web_listen;
  app.add_option("--web", web_listen, "status page address HOST:PORT, \"\" = off");
  bool version = false;
  app.add_flag("--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::cout << "natpilotd " << NATPILOT_VERSION << "\n";
    return 0;
  }
  if (print_config) {
    std::cout << natpilot::DefaultConfigToml();
    return 0;
  }
  try {
    if (!config_file.empty()) natpilot::LoadConfigFile(config_file, config);
    if (app.count("--database")) config.store.path = database;
    if (app.count("--unix-socket")) config.unix_socket = unix_socket;
    if (app.count("--listen")) config.listen = listen;
    if (app.count("--lease-lifetime")) {
      if (lease_s < 30 || lease_s > 604800) {
        throw std::runtime_error("--lease-lifetime " + std::to_string(lease_s) +
                                 " is out of range; allowed 30-604800 seconds");
      }
      config.reconciler.lease_lifetime = natpilot::Seconds(lease_s);
    }
    if (app.count("--discovery-timeout-ms")) {
      if (discovery_ms < 100 || discovery_ms > 10000) {
        throw std::runtime_error("--discovery-timeout-ms " + std::to_string(discovery_ms) +
                                 " is out of range; allowed 100-10000");
      }
      config.upnp.discovery_timeout = std::chrono::milliseconds(discovery_ms);
      config.pcp.probe_timeout = config.natpmp.probe_timeout = config.upnp.discovery_timeout;
    }
    if (app.count("--gateway-url")) config.upnp.root_desc_url = gateway_url;
    if (app.count("--interface")) config.upnp.multicast_interface = interface;
    if (app.count("--log-level")) config.log_level = log_level;
    if (app.count("--rules-folder")) config.static_rules.folder = rules_folder;
    if (app.count("--web")) config.web_listen = web_listen;
    config.reconciler.follow_default_route =
        config.pcp.gateway.empty() && config.upnp.root_desc_url.empty();
    natpilot::ValidateConfig(config);
    return Run(config);
  } catch (const std::exception& e) {
    std::cerr << "natpilotd: " << e.what() << "\n";
    return 2;
  }
}
