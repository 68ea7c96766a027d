// natpilot: the command-line client of natpilotd's gRPC API.
#include <CLI/CLI.hpp>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <optional>

#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"
#include "pbx_config.h"

namespace v1 = natpilot::v1;
using natpilot::cli::Name;
using natpilot::cli::Table;

namespace {

struct CliError {
  std::string message;
  int exit_code = 1;
};

struct Options {
  std::string socket = "natpilot.sock";
  std::string server;
  bool json = false;
  std::string token;       // bearer token for TCP
  std::string token_file;
  std::string tls_ca;      // PEM: the CA that signed natpilotd's certificate; set = TLS
  std::string tls_cert;    // PEM: our client certificate and key, when natpilotd asks for one
  std::string tls_key;
  std::string tls_server_name;
};

std::string g_token;  // sent with every call when set

std::string ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) throw CliError{std::string(flag) + " '" + path + "' cannot be read", 2};
  return ss.str();
}

std::shared_ptr<grpc::Channel> Connect(const Options& o) {
  if (o.server.empty()) return grpc::CreateChannel("unix:" + o.socket, grpc::InsecureChannelCredentials());
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(o.tls_ca, "--tls-ca");
    if (!o.tls_cert.empty()) {
      ssl.pem_cert_chain = ReadFile(o.tls_cert, "--tls-cert");
      ssl.pem_private_key = ReadFile(o.tls_key, "--tls-key");
    }
    creds = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  }
  return grpc::CreateCustomChannel(o.server, creds, args);
}


void Check(const grpc::Status& status, const Options& o) {
  if (status.ok()) return;
  std::string msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && msg.find("connect") != std::string::npos) {
    const bool tls = msg.find("andshake") != std::string::npos || msg.find("SSL") != std::string::npos;
    msg = "cannot reach natpilotd at " + (o.server.empty() ? "unix:" + o.socket : o.server) +
          (tls ? " (TLS failed: check --tls-ca, --tls-cert and --tls-key against natpilotd's api.tls_* "
                 "files)"
               : " (is it running? --socket PATH or --server HOST:PORT)") +
          ": " + msg;
  }
  static const char* kCodes[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                                 "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                 "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int code = status.error_code();
  throw CliError{msg + " [" + (code >= 0 && code <= 16 ? kCodes[code] : "?") + "]"};
}

std::unique_ptr<grpc::ClientContext> Ctx(int timeout_s = 30) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout_s > 0) ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  if (!g_token.empty()) ctx->AddMetadata("authorization", "Bearer " + g_token);
  return ctx;
}

v1::PortRange ParseRange(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return CliError{flag + " '" + text + "' is not a port range; expected PORT or FIRST-LAST, e.g. 10000-10099", 2};
  };
  auto num = [&](std::string_view s) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) throw bad();
    return v;
  };
  v1::PortRange r;
  const auto dash = text.find('-');
  const std::string_view t(text);
  r.set_first(num(dash == std::string::npos ? t : t.substr(0, dash)));
  r.set_last(dash == std::string::npos ? r.first() : num(t.substr(dash + 1)));
  return r;
}

v1::DeviceKind ParseKind(const std::string& k) {
  if (k == "ata") return v1::DEVICE_KIND_ATA;
  if (k == "pbx") return v1::DEVICE_KIND_PBX;
  if (k == "phone") return v1::DEVICE_KIND_PHONE;
  if (k == "other") return v1::DEVICE_KIND_OTHER;
  throw CliError{"--kind '" + k + "' is unknown; allowed: ata, pbx, phone, other", 2};
}

struct PlanFlags {
  std::string sip, rtp, transports;
  bool Any() const { return !sip.empty() || !rtp.empty() || !transports.empty(); }
  void Fill(v1::PortPlan* plan) const {
    if (!sip.empty()) *plan->mutable_sip() = ParseRange("--sip", sip);
    if (!rtp.empty()) *plan->mutable_rtp() = ParseRange("--rtp", rtp);
    if (transports.empty()) return;
    for (const std::string& t : {std::string("udp"), std::string("tcp")}) {
      if (transports.find(t) != std::string::npos) {
        plan->add_sip_transports(t == "udp" ? v1::TRANSPORT_UDP : v1::TRANSPORT_TCP);
      }
    }
    if (transports != "udp" && transports != "tcp" && transports != "udp,tcp" && transports != "tcp,udp") {
      throw CliError{"--sip-transports '" + transports + "' is not allowed; use udp, tcp or udp,tcp", 2};
    }
  }
};

void PrintDevice(const v1::Device& d) {
  Table t({"NAME", "KIND", "ADDRESS", "SIP", "SIP TRANSPORTS", "RTP (udp)", "ACTIVE"});
  std::string ts;
  for (int x : d.plan().sip_transports()) ts += (ts.empty() ? "" : ",") + Name(static_cast<v1::Transport>(x));
  t.Add({d.name(), Name(d.kind()), d.address(), natpilot::cli::Range(d.plan().sip()), ts,
         natpilot::cli::Range(d.plan().rtp()),
         std::to_string(d.mappings_active()) + "/" + std::to_string(d.mappings_total())});
  t.Print(std::cout);
  if (!d.description().empty()) std::cout << "description: " << d.description() << "\n";
  std::cout << "mac: " << (d.mac().empty() ? "(not seen yet)" : d.mac()) << "\n";
  if (!d.suspended().empty()) std::cout << "SUSPENDED: " << d.suspended() << "\n";
}

void ShowDevice(const v1::Device& d, bool json) {
  if (json) std::cout << natpilot::cli::ToJson(d) << "\n";
  else PrintDevice(d);
}

void PrintMappings(const google::protobuf::RepeatedPtrField<v1::Mapping>& ms) {
  Table t({"DEVICE", "PURPOSE", "PROTO", "INTERNAL", "EXTERNAL", "STATE", "VIA", "EXPIRES", "DETAIL"});
  for (const auto& m : ms) {
    const bool leased = m.provision() == v1::PROVISION_LEASE;
    const std::string ext = m.external_address().empty() ? "" : m.external_address() + ":";
    t.Add({m.device(), m.purpose() == v1::MAPPING_PURPOSE_RTP ? "rtp" : "sip", Name(m.transport()),
           m.internal_address() + ":" + std::to_string(m.internal_port()),
           ext + std::to_string(m.external_port()), Name(m.state()), Name(m.protocol()),
           natpilot::cli::ExpiresIn(m.expires_at(), leased), m.detail()});
  }
  t.Print(std::cout);
}

// Writes through a temporary file and a rename, so the router never reads half a file.
void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw CliError{"cannot write " + tmp};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw CliError{"cannot rename " + tmp + " to " + path};
}

void PrintEvent(const v1::Event& e, bool json) {
  if (json) {
    std::cout << natpilot::cli::ToJson(e) << std::endl;
    return;
  }
  std::cout << natpilot::cli::Time(e.at()) << "  " << e.kind() << "  "
            << (e.device().empty() ? "" : e.device() + "  ") << e.message() << "  (by " << e.caller()
            << ")" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"natpilot: talk to natpilotd (devices, mappings, gateway, events)"};
  app.require_subcommand(1);
  app.fallthrough();
  Options o;
  app.add_option("--socket", o.socket, "natpilotd's unix socket")->capture_default_str();
  app.add_option("--server", o.server, "natpilotd's TCP address HOST:PORT instead of the socket");
  app.add_flag("--json", o.json, "machine-readable JSON output");
  app.add_option("--token", o.token, "API token for --server (admin or device); or NATPILOT_TOKEN");
  app.add_option("--token-file", o.token_file, "read the API token from this file");
  app.add_option("--tls-ca", o.tls_ca, "CA certificate (PEM) of natpilotd's TLS listener; turns TLS on");
  app.add_option("--tls-cert", o.tls_cert, "client certificate (PEM), when natpilotd asks for one");
  app.add_option("--tls-key", o.tls_key, "client key (PEM) for --tls-cert");
  app.add_option("--tls-server-name", o.tls_server_name, "name to check in natpilotd's certificate");

  // device add/list/show/rm/update
  auto* device = app.add_subcommand("device", "register, list, show, update and remove devices");
  device->require_subcommand(1);
  device->fallthrough();
  std::string name, address, kind;
  PlanFlags plan;
  auto* add = device->add_subcommand("add", "register a device and forward its SIP and RTP ports");
  add->add_option("NAME", name, "device name")->required();
  add->add_option("--address", address, "the device's IPv4 LAN address")->required();
  add->add_option("--kind", kind, "ata, pbx, phone or other");
  add->add_option("--sip", plan.sip, "SIP ports, FIRST-LAST (default 5060-5070)");
  add->add_option("--sip-transports", plan.transports, "udp, tcp or udp,tcp (default both)");
  add->add_option("--rtp", plan.rtp, "RTP ports on UDP, FIRST-LAST (default 10000-10099)");
  std::string description;
  add->add_option("--description", description, "free text for people (at most 200 bytes)");
  auto* update = device->add_subcommand("update", "change a device's kind, address or port plan");
  update->add_option("NAME", name, "device name")->required();
  update->add_option("--address", address, "new IPv4 LAN address");
  update->add_option("--kind", kind, "ata, pbx, phone or other");
  update->add_option("--sip", plan.sip, "SIP ports, FIRST-LAST");
  update->add_option("--sip-transports", plan.transports, "udp, tcp or udp,tcp");
  update->add_option("--rtp", plan.rtp, "RTP ports on UDP, FIRST-LAST");
  update->add_option("--description", description, "free text for people (at most 200 bytes)");
  bool forget_identity = false;
  update->add_flag("--forget-identity", forget_identity,
                   "forget the recorded MAC and lift a suspension (admin)");
  auto* token_cmd = device->add_subcommand("token", "issue a new API token for a device (admin)");
  token_cmd->add_option("NAME", name, "device name")->required();
  auto* list = device->add_subcommand("list", "list devices");
  auto* show = device->add_subcommand("show", "show a device and its mappings");
  show->add_option("NAME", name, "device name")->required();
  auto* rm = device->add_subcommand("rm", "remove a device and delete its gateway entries");
  rm->add_option("NAME", name, "device name")->required();

  auto* mapping = app.add_subcommand("mapping", "list mappings");
  mapping->require_subcommand(1);
  mapping->fallthrough();
  auto* mlist = mapping->add_subcommand("list", "list every mapping with its state and expiry");
  std::string mdevice;
  mlist->add_option("--device", mdevice, "only this device's mappings");

  auto* release = app.add_subcommand("release", "delete leases from the gateway now (devices stay)");
  bool release_all = false;
  std::string release_device;
  release->add_flag("--all", release_all, "every device's leases");
  release->add_option("--device", release_device, "one device's leases");

  auto* gateway = app.add_subcommand("gateway", "show the gateway: protocol, control URL, external address");
  bool rediscover = false;
  gateway->add_flag("--rediscover", rediscover, "probe the gateway again now");

  auto* rules_cmd = app.add_subcommand("rules", "static forwarding rules for the router, to apply by hand");
  std::string rules_format, wan_if, lan_if, wan_address, forward_chain, rules_out;
  bool rules_all = false, hairpin = false, no_hairpin = false;
  rules_cmd->add_option("--format", rules_format, "nftables, iptables or openwrt")->required();
  rules_cmd->add_option("--wan-if", wan_if, "the router's WAN interface (openwrt: zone)");
  rules_cmd->add_option("--lan-if", lan_if, "the router's LAN interface (openwrt: zone)");
  rules_cmd->add_option("--wan-address", wan_address, "the router's external IPv4 address");
  rules_cmd->add_option("--forward-chain", forward_chain, "the router's forward chain, 'FAMILY TABLE CHAIN'");
  rules_cmd->add_flag("--hairpin", hairpin, "also forward LAN clients that use the external address");
  rules_cmd->add_flag("--no-hairpin", no_hairpin, "no hairpin NAT, whatever the config says");
  rules_cmd->add_flag("--all", rules_all, "every device, not only those that need static rules");
  rules_cmd->add_option("--out", rules_out, "write to FILE instead of standard output");

  auto* pbx_cmd = app.add_subcommand("pbx-config", "what a PBX or ATA must advertise: external address and ports");
  std::string pbx_device, flavor = "json";
  bool pbx_follow = false;
  pbx_cmd->add_option("DEVICE", pbx_device, "device name")->required();
  pbx_cmd->add_option("--flavor", flavor, "asterisk, freeswitch or json")->capture_default_str();
  pbx_cmd->add_flag("-f,--follow", pbx_follow, "print it again whenever it changes");
  auto* doctor = app.add_subcommand("doctor", "what stands between the internet and the devices, and what to do");

  auto* health = app.add_subcommand("health", "is natpilotd serving? (gRPC health check; exit 0 when it is)");
  auto* version_cmd = app.add_subcommand("version", "print natpilot's version");

  auto* events = app.add_subcommand("events", "show events; --follow streams new ones");
  bool follow = false;
  uint32_t backlog = 20;
  events->add_flag("-f,--follow", follow, "keep streaming new events");
  events->add_option("-n,--backlog", backlog, "how many past events to show first")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (*version_cmd) {
    std::cout << "natpilot " << NATPILOT_VERSION << "\n";
    return 0;
  }
  try {
    if (!o.token_file.empty()) {
      std::istringstream in(ReadFile(o.token_file, "--token-file"));
      std::getline(in, g_token);
    } else if (!o.token.empty()) {
      g_token = o.token;
    } else if (const char* env = std::getenv("NATPILOT_TOKEN")) {
      g_token = env;
    }
    if (o.server.empty()) g_token.clear();  // the unix socket needs none
    auto channel = Connect(o);
    std::unique_ptr<v1::DeviceService::StubInterface> devices = v1::DeviceService::NewStub(channel);
    std::unique_ptr<v1::MappingService::StubInterface> mappings = v1::MappingService::NewStub(channel);
    std::unique_ptr<v1::GatewayService::StubInterface> gw = v1::GatewayService::NewStub(channel);
    std::unique_ptr<v1::EventService::StubInterface> ev = v1::EventService::NewStub(channel);
    std::unique_ptr<v1::RulesService::StubInterface> rules = v1::RulesService::NewStub(channel);
    std::unique_ptr<v1::NatService::StubInterface> nat = v1::NatService::NewStub(channel);

    if (*health) {
      // grpc.health.v1.Health/Check with an empty HealthCheckRequest (the whole server); the
      // answer is HealthCheckResponse{status = 1 SERVING}, two bytes on the wire.
      grpc::GenericStub stub(channel);
      grpc::ByteBuffer request, response;
      grpc::Slice empty("", 0);
      request = grpc::ByteBuffer(&empty, 1);
      auto ctx = Ctx(5);
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      grpc::Status status;
      stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                     [&](grpc::Status s) {
                       std::lock_guard lock(mu);
                       status = std::move(s);
                       done = true;
                       cv.notify_all();
                     });
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
      Check(status, o);
      std::vector<grpc::Slice> slices;
      (void)response.Dump(&slices);
      std::string bytes;
      for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      if (bytes != std::string("\x08\x01", 2)) throw CliError{"natpilotd answers but is not serving"};
      std::cout << "serving\n";
    } else if (*add) {
      v1::RegisterDeviceRequest req;
      req.set_name(name);
      req.set_address(address);
      if (!kind.empty()) req.set_kind(ParseKind(kind));
      if (plan.Any()) plan.Fill(req.mutable_plan());
      req.set_description(description);
      v1::RegisterDeviceResponse resp;
      Check(devices->RegisterDevice(Ctx().get(), req, &resp), o);
      if (o.json) {
        std::cout << natpilot::cli::ToJson(resp) << "\n";
      } else {
        PrintDevice(resp.device());
        std::cout << "token: " << resp.token()
                  << "\n  (shown once: the device's own API token; natpilot device token "
                  << name << " issues a new one)\n";
      }
    } else if (*token_cmd) {
      v1::ResetDeviceTokenRequest req;
      req.set_name(name);
      v1::ResetDeviceTokenResponse resp;
      Check(devices->ResetDeviceToken(Ctx().get(), req, &resp), o);
      if (o.json) std::cout << natpilot::cli::ToJson(resp) << "\n";
      else std::cout << "token: " << resp.token() << "\n  (shown once; the old token no longer works)\n";
    } else if (*update) {
      v1::UpdateDeviceRequest req;
      req.set_name(name);
      if (!address.empty()) req.set_address(address);
      if (!kind.empty()) req.set_kind(ParseKind(kind));
      if (plan.Any()) plan.Fill(req.mutable_plan());
      if (update->count("--description")) req.set_description(description);
      req.set_forget_identity(forget_identity);
      v1::UpdateDeviceResponse resp;
      Check(devices->UpdateDevice(Ctx().get(), req, &resp), o);
      ShowDevice(resp.device(), o.json);
    } else if (*list) {
      v1::ListDevicesResponse resp;
      Check(devices->ListDevices(Ctx().get(), {}, &resp), o);
      if (o.json) {
        std::cout << natpilot::cli::ToJson(resp) << "\n";
      } else {
        Table t({"NAME", "KIND", "ADDRESS", "SIP", "RTP (udp)", "ACTIVE"});
        for (const auto& d : resp.devices()) {
          t.Add({d.name(), Name(d.kind()), d.address(), natpilot::cli::Range(d.plan().sip()),
                 natpilot::cli::Range(d.plan().rtp()),
                 std::to_string(d.mappings_active()) + "/" + std::to_string(d.mappings_total())});
        }
        t.Print(std::cout);
      }
    } else if (*show) {
      v1::GetDeviceRequest req;
      req.set_name(name);
      v1::GetDeviceResponse resp;
      Check(devices->GetDevice(Ctx().get(), req, &resp), o);
      if (o.json) {
        std::cout << natpilot::cli::ToJson(resp) << "\n";
      } else {
        PrintDevice(resp.device());
        std::cout << "\n";
        PrintMappings(resp.mappings());
      }
    } else if (*rm) {
      v1::RemoveDeviceRequest req;
      req.set_name(name);
      v1::RemoveDeviceResponse resp;
      Check(devices->RemoveDevice(Ctx().get(), req, &resp), o);
      if (o.json) std::cout << "{\"removed\":\"" << name << "\"}\n";
      else std::cout << "removed " << name << "; its gateway entries are being deleted\n";
    } else if (*mlist) {
      v1::ListMappingsRequest req;
      req.set_device(mdevice);
      v1::ListMappingsResponse resp;
      Check(mappings->ListMappings(Ctx().get(), req, &resp), o);
      if (o.json) std::cout << natpilot::cli::ToJson(resp) << "\n";
      else PrintMappings(resp.mappings());
    } else if (*release) {
      if (release_all == !release_device.empty()) {
        throw CliError{"say what to release: --all or --device NAME (one of them)", 2};
      }
      v1::ReleaseMappingsRequest req;
      if (release_all) req.set_all(true);
      else req.set_device(release_device);
      v1::ReleaseMappingsResponse resp;
      Check(mappings->ReleaseMappings(Ctx().get(), req, &resp), o);
      if (o.json) std::cout << natpilot::cli::ToJson(resp) << "\n";
      else std::cout << "released: " << resp.released() << " leases are being deleted from the gateway\n";
    } else if (*gateway) {
      if (rediscover) {
        v1::RediscoverGatewayResponse r;
        Check(gw->RediscoverGateway(Ctx().get(), {}, &r), o);
      }
      v1::GetGatewayResponse resp;
      Check(gw->GetGateway(Ctx().get(), {}, &resp), o);
      const auto& g = resp.gateway();
      if (o.json) {
        std::cout << natpilot::cli::ToJson(g) << "\n";
      } else {
        Table t({"FIELD", "VALUE"});
        t.Add({"status", Name(g.status())});
        t.Add({"protocol", Name(g.protocol())});
        t.Add({"gateway", g.address().empty() ? "-" : g.address()});
        t.Add({"control url", g.control_url().empty() ? "-" : g.control_url()});
        t.Add({"external address", g.external_address().empty() ? "-" : g.external_address()});
        t.Add({"local address", g.local_address().empty() ? "-" : g.local_address()});
        t.Add({"detail", g.detail()});
        t.Add({"checked", natpilot::cli::Time(g.checked_at())});
        t.Add({"next check", natpilot::cli::Time(g.next_check_at())});
        t.Print(std::cout);
        std::cout << "\n";
        Table probes({"PROTOCOL", "ANSWERED", "TOOK", "EXTERNAL ADDRESS", "DETAIL"});
        for (const auto& p : g.protocols()) {
          probes.Add({Name(p.protocol()), p.finished() ? (p.answered() ? "yes" : "no") : "probing",
                      std::to_string(p.took_ms()) + " ms",
                      p.external_address().empty() ? "-" : p.external_address(), p.detail()});
        }
        probes.Print(std::cout);
        natpilot::cli::PrintOtherIgds(g, std::cout);
      }
    } else if (*rules_cmd) {
      v1::GenerateRulesRequest req;
      if (rules_format == "nftables") req.set_format(v1::RULES_FORMAT_NFTABLES);
      else if (rules_format == "iptables") req.set_format(v1::RULES_FORMAT_IPTABLES);
      else if (rules_format == "openwrt") req.set_format(v1::RULES_FORMAT_OPENWRT);
      else throw CliError{"--format '" + rules_format + "' is unknown; allowed: nftables, iptables, openwrt", 2};
      req.set_wan_interface(wan_if);
      req.set_lan_interface(lan_if);
      req.set_wan_address(wan_address);
      req.set_forward_chain(forward_chain);
      if (hairpin || no_hairpin) req.set_hairpin(hairpin && !no_hairpin);
      req.set_all_devices(rules_all);
      v1::GenerateRulesResponse resp;
      Check(rules->GenerateRules(Ctx().get(), req, &resp), o);
      if (rules_out.empty()) {
        std::cout << resp.text();
      } else {
        WriteFile(rules_out, resp.text());
        std::cerr << "wrote " << rules_out << " (" << resp.devices_size() << " devices)\n";
      }
    } else if (*pbx_cmd) {
      natpilot::pbx::Flavor f;
      if (!natpilot::pbx::ParseFlavor(flavor, &f)) {
        throw CliError{"--flavor '" + flavor + "' is unknown; allowed: asterisk, freeswitch, json", 2};
      }
      if (!pbx_follow) {
        v1::GetNatViewRequest req;
        req.set_device(pbx_device);
        v1::NatView view;
        Check(nat->GetNatView(Ctx().get(), req, &view), o);
        std::cout << natpilot::pbx::Render(f, view);
      } else {
        v1::WatchNatViewRequest req;
        req.set_device(pbx_device);
        auto ctx = Ctx(0);
        auto reader = nat->WatchNatView(ctx.get(), req);
        v1::NatView view;
        while (reader->Read(&view)) std::cout << natpilot::pbx::Render(f, view) << std::flush;
        Check(reader->Finish(), o);
      }
    } else if (*doctor) {
      v1::DiagnoseResponse resp;
      Check(nat->Diagnose(Ctx().get(), {}, &resp), o);
      if (o.json) {
        std::cout << natpilot::cli::ToJson(resp) << "\n";
      } else {
        static const char* kMark[] = {"?", "ok", "info", "WARNING", "PROBLEM"};
        for (const auto& f : resp.findings()) {
          std::cout << "[" << kMark[std::clamp<int>(f.level(), 0, 4)] << "] " << f.topic() << ": " << f.text() << "\n";
          if (!f.advice().empty()) std::cout << "      -> " << f.advice() << "\n";
        }
      }
    } else if (*events) {
      if (!follow) {
        v1::ListEventsRequest req;
        req.set_limit(backlog);
        v1::ListEventsResponse resp;
        Check(ev->ListEvents(Ctx().get(), req, &resp), o);
        for (const auto& e : resp.events()) PrintEvent(e, o.json);
      } else {
        v1::WatchEventsRequest req;
        req.set_backlog(backlog);
        auto ctx = Ctx(0);
        auto reader = ev->WatchEvents(ctx.get(), req);
        v1::Event e;
        while (reader->Read(&e)) PrintEvent(e, o.json);
        Check(reader->Finish(), o);
      }
    }
  } catch (const CliError& e) {
    std::cerr << "natpilot: " << e.message << "\n";
    return e.exit_code;
  }
  return 0;
}
