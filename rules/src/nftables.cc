// nftables: a table of natpilot's own, replaced atomically by `nft -f`; one DNAT rule and one
// forward accept per device and transport, with the ports as an anonymous interval set.
#include <sstream>

#include "groups.h"
#include "rules.h"

namespace natpilot::rules::detail {

std::string Nftables(const RulesInput& in, const RouterParams& p, const std::string& header) {
  std::istringstream fc(p.forward_chain);
  std::string family, table, chain;
  fc >> family >> table >> chain;
  std::ostringstream o;
  o << header << "#\n"
    << "# apply:  nft -f FILE\n"
    << "# remove: nft delete table ip natpilot\n"
    << "#\n"
    << "# This file defines and replaces only the table 'ip natpilot'. An accept here cannot\n"
    << "# override a drop in the router's own forward chain, and nft cannot jump between tables, "
       "so\n"
    << "# a router whose forward chain drops by default needs this one rule in it (once):\n"
    << "# wire:   nft insert rule " << p.forward_chain
    << " ct status dnat accept comment \"natpilot-wiring\"\n"
    << "# unwire: nft -a list chain " << p.forward_chain
    << " | sed -n 's/.*\"natpilot-wiring\" # handle \\([0-9]*\\)$/\\1/p' | xargs -r -n1 nft delete "
       "rule "
    << p.forward_chain << " handle\n\n";
  o << "table ip natpilot\n"
    << "delete table ip natpilot\n"
    << "table ip natpilot {\n"
    << "\tchain prerouting {\n"
    << "\t\ttype nat hook prerouting priority dstnat; policy accept;\n";
  const std::string hairpin_match =
      p.wan_address.empty() ? "fib daddr type local" : "ip daddr " + p.wan_address;
  for (const Device& d : in.devices) {
    for (const PortGroup& g : Groups(d)) {
      const std::string proto(ToString(g.transport));
      const std::string ports = proto + " dport { " + Join(g.ranges, ", ", '-') + " }";
      const std::string comment = " comment \"" + d.name + " " + proto + "\";\n";
      o << "\t\tiifname \"" << p.wan_interface << "\" " << ports << " dnat to " << d.address
        << comment;
      if (p.hairpin) {
        o << "\t\tiifname \"" << p.lan_interface << "\" " << hairpin_match << " " << ports
          << " dnat to " << d.address << comment;
      }
    }
  }
  o << "\t}\n"
    << "\tchain forward {\n"
    << "\t\ttype filter hook forward priority filter; policy accept;\n";
  for (const Device& d : in.devices) {
    for (const PortGroup& g : Groups(d)) {
      const std::string proto(ToString(g.transport));
      o << "\t\tip daddr " << d.address << " " << proto << " dport { " << Join(g.ranges, ", ", '-')
        << " } ct status dnat accept comment \"" << d.name << " " << proto << "\";\n";
    }
  }
  o << "\t}\n";
  if (p.hairpin) {
    // Replies from the device must go back through the router, so hairpinned traffic is
    // masqueraded to the router's LAN address.
    o << "\tchain postrouting {\n"
      << "\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
    for (const Device& d : in.devices) {
      for (const PortGroup& g : Groups(d)) {
        const std::string proto(ToString(g.transport));
        o << "\t\tiifname \"" << p.lan_interface << "\" oifname \"" << p.lan_interface
          << "\" ip daddr " << d.address << " " << proto << " dport { " << Join(g.ranges, ", ", '-')
          << " } ct status dnat masquerade comment \"" << d.name << " " << proto << " hairpin\";\n";
      }
    }
    o << "\t}\n";
  }
  o << "}\n";
  return o.str();
}

}  // namespace natpilot::rules::detail
