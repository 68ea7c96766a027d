#include "portmap/netutil.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace natpilot {

Result<std::string> DefaultGateway() {
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream fields(line);
    std::string iface, destination, gateway;
    fields >> iface >> destination >> gateway;
    if (destination != "00000000" || gateway == "00000000") continue;
    const uint32_t raw = static_cast<uint32_t>(std::stoul(gateway, nullptr, 16));  // network order
    in_addr a{};
    a.s_addr = raw;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return std::string(buf);
  }
  return Fail(Errc::kUnavailable, "no IPv4 default route (set gateway.address in the config)");
}

Result<std::string> LocalAddressTowards(const std::string& address) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  if (inet_pton(AF_INET, address.c_str(), &to.sin_addr) != 1) {
    return Fail(Errc::kInvalidArgument, "'" + address + "' is not an IPv4 address");
  }
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Errc::kUnavailable, std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    const std::string err = std::strerror(errno);
    close(fd);
    return Fail(Errc::kUnavailable, "no route to " + address + ": " + err);
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  close(fd);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &local.sin_addr, buf, sizeof buf);
  return std::string(buf);
}

Result<GatewayRoute> FindGatewayRoute(const std::string& configured_gateway) {
  auto gw = configured_gateway.empty() ? DefaultGateway() : Result<std::string>(configured_gateway);
  if (!gw) return tl::unexpected(gw.error());
  auto local = LocalAddressTowards(*gw);
  if (!local) return tl::unexpected(local.error());
  return GatewayRoute{*gw, *local};
}

std::vector<Subnet> HostLanSubnets() {
  std::vector<Subnet> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != AF_INET)
      continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    const uint32_t addr = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    const uint32_t mask = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
    Subnet s{addr & mask, static_cast<uint8_t>(__builtin_popcount(mask))};
    bool dup = false;
    for (const Subnet& o : out) dup = dup || o == s;
    if (!dup) out.push_back(s);
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace natpilot
