// natpilot rules: static forwarding rules for routers without UPnP, PCP or NAT-PMP.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"

namespace natpilot::cli {
namespace {

struct RulesFlags {
  std::string format, wan_if, lan_if, wan_address, forward_chain, out;
  bool all = false, hairpin = false, no_hairpin = false;
};

// Writes through a temporary file and a rename, so the router never reads half a file.
void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw CliError{"cannot write " + tmp};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw CliError{"cannot rename " + tmp + " to " + path};
  }
}

void GenerateRules(const RulesFlags& f, const Options& o, const Channel& channel) {
  v1::GenerateRulesRequest req;
  if (f.format == "nftables") {
    req.set_format(v1::RULES_FORMAT_NFTABLES);
  } else if (f.format == "iptables") {
    req.set_format(v1::RULES_FORMAT_IPTABLES);
  } else if (f.format == "openwrt") {
    req.set_format(v1::RULES_FORMAT_OPENWRT);
  } else {
    throw CliError{"--format '" + f.format + "' is unknown; allowed: nftables, iptables, openwrt",
                   2};
  }
  req.set_wan_interface(f.wan_if);
  req.set_lan_interface(f.lan_if);
  req.set_wan_address(f.wan_address);
  req.set_forward_chain(f.forward_chain);
  if (f.hairpin || f.no_hairpin) req.set_hairpin(f.hairpin && !f.no_hairpin);
  req.set_all_devices(f.all);
  v1::GenerateRulesResponse resp;
  Check(v1::RulesService::NewStub(channel)->GenerateRules(Ctx().get(), req, &resp), o);
  if (f.out.empty()) {
    std::cout << resp.text();
  } else {
    WriteFile(f.out, resp.text());
    std::cerr << "wrote " << f.out << " (" << resp.devices_size() << " devices)\n";
  }
}

}  // namespace

void AddRulesCommands(CLI::App& app, Commands& commands) {
  auto* rules =
      app.add_subcommand("rules", "static forwarding rules for the router, to apply by hand");
  // Kept alive by the handler; CLI11 fills it in while parsing.
  auto f = std::make_shared<RulesFlags>();
  rules->add_option("--format", f->format, "nftables, iptables or openwrt")->required();
  rules->add_option("--wan-if", f->wan_if, "the router's WAN interface (openwrt: zone)");
  rules->add_option("--lan-if", f->lan_if, "the router's LAN interface (openwrt: zone)");
  rules->add_option("--wan-address", f->wan_address, "the router's external IPv4 address");
  rules->add_option("--forward-chain", f->forward_chain,
                    "the router's forward chain, 'FAMILY TABLE CHAIN'");
  rules->add_flag("--hairpin", f->hairpin,
                  "also forward LAN clients that use the external address");
  rules->add_flag("--no-hairpin", f->no_hairpin, "no hairpin NAT, whatever the config says");
  rules->add_flag("--all", f->all, "every device, not only those that need static rules");
  rules->add_option("--out", f->out, "write to FILE instead of standard output");
  commands.Add(rules, [f](const Options& o, const Channel& c) { GenerateRules(*f, o, c); });
}

}  // namespace natpilot::cli
