// OpenWrt fw4 / UCI: one named `config redirect` section per device and transport. Without
// dest_port a redirect keeps the port (port-preserving).
#include <sstream>

#include "groups.h"
#include "rules.h"

namespace natpilot::rules::detail {

namespace {
// UCI section names allow [A-Za-z0-9_]; device names may also hold '.' and '-'. They are escaped
// one-to-one ('_' -> "_u", '.' -> "_d", '-' -> "_h"), so "ata-1", "ata_1" and "ata.1" stay three
// sections instead of one overwriting the others; a name without them reads as it is.
std::string SectionName(const std::string& device, std::string_view proto) {
  std::string s = "natpilot_";
  for (char c : device) {
    if (c == '_')
      s += "_u";
    else if (c == '.')
      s += "_d";
    else if (c == '-')
      s += "_h";
    else
      s += c;
  }
  return s + "_" + std::string(proto);
}
}  // namespace

std::string Openwrt(const RulesInput& in, const RouterParams& p, const std::string& header) {
  std::ostringstream o;
  o << header << "#\n"
    << "# WAN and LAN are firewall zone names here ('" << p.wan_interface << "', '"
    << p.lan_interface << "'). Sections are named natpilot_<device>_<proto>\n"
    << "# ('_', '.' and '-' in a device name are written _u, _d and _h).\n"
    << "# remove: for s in $(uci show firewall | sed -n "
       "'s/^firewall\\.\\(natpilot_[A-Za-z0-9_]*\\)=redirect$/\\1/p'); "
       "do uci delete firewall.$s; done; uci commit firewall; service firewall reload\n"
    << "# apply:  (the remove line first, then) uci -m import firewall < FILE && uci commit "
       "firewall && "
       "service firewall reload\n\n";
  for (const Device& d : in.devices) {
    for (const PortGroup& g : Groups(d)) {
      const std::string proto(ToString(g.transport));
      for (size_t i = 0; i < g.ranges.size(); ++i) {
        // fw4 takes one port or one range per redirect.
        std::string name = SectionName(d.name, proto);
        if (g.ranges.size() > 1) name += "_" + std::to_string(i + 1);
        o << "config redirect '" << name << "'\n"
          << "\toption name '"
          << "natpilot " << d.name << " " << proto << "'\n"
          << "\toption src '" << p.wan_interface << "'\n"
          << "\toption src_dport '" << Join({g.ranges[i]}, "", '-') << "'\n"
          << "\toption dest '" << p.lan_interface << "'\n"
          << "\toption dest_ip '" << d.address << "'\n"
          << "\toption proto '" << proto << "'\n"
          << "\toption target 'DNAT'\n"
          << "\toption reflection '" << (p.hairpin ? 1 : 0) << "'\n\n";
      }
    }
  }
  return o.str();
}

}  // namespace natpilot::rules::detail
