// iptables-restore: natpilot's own chains in the nat and filter tables. Declaring a chain in a
// --noflush restore empties it, so re-applying replaces the rules; the jumps from the built-in
// chains are added once with check-or-insert, so applying twice adds nothing.
#include <sstream>

#include "groups.h"
#include "rules.h"

namespace natpilot::rules::detail {

namespace {
struct Jump {
  const char* table;
  const char* from;
  const char* to;
};
}  // namespace

std::string Iptables(const RulesInput& in, const RouterParams& p, const std::string& header) {
  std::vector<Jump> jumps{{"nat", "PREROUTING", "NATPILOT-PREROUTING"},
                          {"filter", "FORWARD", "NATPILOT-FORWARD"}};
  if (p.hairpin) jumps.push_back({"nat", "POSTROUTING", "NATPILOT-POSTROUTING"});
  std::ostringstream o;
  o << header << "#\n# apply:  iptables-restore --noflush FILE\n";
  for (const Jump& j : jumps) {
    o << "# apply:  iptables -t " << j.table << " -C " << j.from << " -j " << j.to
      << " 2>/dev/null || iptables -t " << j.table << " -I " << j.from << " 1 -j " << j.to << "\n";
  }
  for (const Jump& j : jumps) {
    o << "# remove: iptables -t " << j.table << " -D " << j.from << " -j " << j.to
      << " && iptables -t " << j.table << " -F " << j.to << " && iptables -t " << j.table << " -X "
      << j.to << "\n";
  }
  o << "#\n# A router whose forward policy drops in another table (nftables) also needs:\n"
    << "# wire:   nft insert rule " << p.forward_chain
    << " ct status dnat accept comment \"natpilot-wiring\"\n"
    << "# unwire: nft -a list chain " << p.forward_chain
    << " | sed -n 's/.*\"natpilot-wiring\" # handle \\([0-9]*\\)$/\\1/p' | xargs -r -n1 nft delete "
       "rule "
    << p.forward_chain << " handle\n\n";

  const std::string hairpin_match =
      p.wan_address.empty() ? "-m addrtype --dst-type LOCAL" : "-d " + p.wan_address + "/32";
  o << "*nat\n:NATPILOT-PREROUTING - [0:0]\n";
  if (p.hairpin) o << ":NATPILOT-POSTROUTING - [0:0]\n";
  for (const Device& d : in.devices) {
    for (const PortGroup& g : Groups(d)) {
      const std::string proto(ToString(g.transport));
      const std::string match = "-p " + proto + " -m multiport --dports " +
                                Join(g.ranges, ",", ':') + " -m comment --comment \"" + d.name +
                                " " + proto + "\"";
      o << "-A NATPILOT-PREROUTING -i " << p.wan_interface << " " << match
        << " -j DNAT --to-destination " << d.address << "\n";
      if (p.hairpin) {
        o << "-A NATPILOT-PREROUTING -i " << p.lan_interface << " " << hairpin_match << " " << match
          << " -j DNAT --to-destination " << d.address << "\n";
        o << "-A NATPILOT-POSTROUTING -o " << p.lan_interface << " -d " << d.address << "/32 "
          << match << " -m conntrack --ctstate DNAT -j MASQUERADE\n";
      }
    }
  }
  o << "COMMIT\n*filter\n:NATPILOT-FORWARD - [0:0]\n";
  for (const Device& d : in.devices) {
    for (const PortGroup& g : Groups(d)) {
      const std::string proto(ToString(g.transport));
      o << "-A NATPILOT-FORWARD -d " << d.address << "/32 -p " << proto << " -m multiport --dports "
        << Join(g.ranges, ",", ':') << " -m conntrack --ctstate DNAT -m comment --comment \""
        << d.name << " " << proto << "\" -j ACCEPT\n";
    }
  }
  o << "COMMIT\n";
  return o.str();
}

}  // namespace natpilot::rules::detail
