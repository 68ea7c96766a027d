// natpilotd's configuration: embedded defaults, then a TOML file, then command-line flags.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"
#include "identity/identity_watch.h"
#include "mapping/reconciler_options.h"
#include "mapping/static_rules.h"
#include "portmap/natpmp_mapper.h"
#include "portmap/pcp_mapper.h"
#include "portmap/upnp_mapper.h"
#include "store/sqlite_store.h"

namespace natpilot {

// One [[pbx]] table: a device whose PBX configuration natpilotd keeps current.
struct PbxConfig {
  std::string device;
  std::string flavor = "json";         // asterisk, freeswitch, json
  std::string file;                    // "" = none
  std::string rtp_file;                // asterisk: rtp.conf's part; "" = none
  std::vector<std::string> on_change;  // hook argv; empty = none
  Seconds hook_timeout{30};
};

struct Config {
  StoreOptions store;  // database path, event retention
  std::string unix_socket = "natpilot.sock";
  unsigned unix_socket_mode = 0660;
  std::string unix_socket_group;           // empty: the daemon's group
  std::string listen = "127.0.0.1:50551";  // TCP; empty disables it
  // Admin token for TCP callers: set here, or read from (made at first start in) the file.
  std::string admin_token;
  std::string admin_token_file = "natpilot-admin.token";
  bool device_calls_from_own_address = false;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  bool allow_insecure_tcp = false;  // non-loopback TCP without TLS: only when said explicitly
  uint32_t write_rate_per_s = 20;   // writes per caller per second; 0 = no limit
  uint32_t write_burst = 40;
  IdentityOptions identity;
  std::string web_listen = "127.0.0.1:8080";  // status page, JSON, /metrics; "" = off
  std::vector<std::string> web_host_names;    // Host names allowed besides IP literals, localhost
  std::string stun_server;  // doctor.stun_server, HOST:PORT; "" = the doctor does not ask
  std::vector<PbxConfig> pbx;
  std::string log_level = "info";
  UpnpOptions upnp;
  PcpOptions pcp;
  NatPmpOptions natpmp;
  // Protocols to probe, most preferred first.
  std::vector<GatewayProtocol> protocols{GatewayProtocol::kPcp, GatewayProtocol::kNatPmp,
                                         GatewayProtocol::kUpnpIgd};
  ReconcilerOptions reconciler;
  Policy policy;
  PortPlan default_plan;
  StaticRulesOptions static_rules{rules::RouterParams{}, "natpilot-rules"};
  bool release_on_shutdown = false;
};

// Reads a TOML file over the defaults. Throws std::runtime_error naming the file, the key and what
// is allowed; unknown keys are errors too (a typo must not be silently ignored).
void LoadConfigFile(const std::string& path, Config& config);
// The same from text; `source` names it in errors.
void LoadConfigText(std::string_view text, const std::string& source, Config& config);
// True when the TCP listen address is loopback.
bool IsLoopbackListen(const std::string& listen);
// Checks the whole config once flags are applied. Throws std::runtime_error.
void ValidateConfig(const Config& config);
// The default config as TOML, for `natpilotd --print-config`.
std::string DefaultConfigToml();

}  // namespace natpilot
