// The raw floor of a gateway (issue 9; bench/protocols.sh runs it in the lab): one device's plan,
// 22 SIP (5060-5070 on UDP and TCP) and 100 RTP (10000-10099 on UDP) mappings, sent straight at
// the gateway one after another with nothing around them: no store, no retries, no checks.
// Prints the milliseconds it took. Usage:
//   raw_floor pcp GATEWAY CLIENT_ADDRESS | natpmp GATEWAY | upnp ROOT_DESC_URL CLIENT_ADDRESS
#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <natpmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "portmap/pcp_codec.h"

namespace {

struct Want {
  bool tcp;
  uint16_t port;
};

std::vector<Want> Plan() {
  std::vector<Want> out;
  for (uint16_t p = 5060; p <= 5070; ++p) out.push_back({false, p}), out.push_back({true, p});
  for (uint16_t p = 10000; p <= 10099; ++p) out.push_back({false, p});
  return out;
}

int Pcp(const char* gateway, const char* client) {
  namespace pcp = natpilot::pcp;
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5351);
  inet_pton(AF_INET, gateway, &to.sin_addr);
  connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  std::mt19937 rng(std::random_device{}());
  int ok = 0;
  for (const Want& w : Plan()) {
    pcp::MapRequest r;
    r.client = *pcp::ParseIpv4(client);
    for (auto& b : r.nonce) b = static_cast<uint8_t>(rng());
    r.transport = w.tcp ? natpilot::Transport::kTcp : natpilot::Transport::kUdp;
    r.internal_port = r.suggested_external_port = w.port;
    r.lifetime_s = 3600;
    const auto bytes = pcp::EncodeMapRequest(r);
    send(fd, bytes.data(), bytes.size(), 0);
    pollfd p{fd, POLLIN, 0};
    uint8_t buf[1100];
    if (poll(&p, 1, 2000) == 1 && recv(fd, buf, sizeof buf, 0) > 0) ++ok;
  }
  close(fd);
  return ok;
}

int NatPmp(const char* gateway) {
  natpmp_t n;
  in_addr gw{};
  inet_pton(AF_INET, gateway, &gw);
  if (initnatpmp(&n, 1, gw.s_addr) < 0) return 0;
  int ok = 0;
  for (const Want& w : Plan()) {
    sendnewportmappingrequest(&n, w.tcp ? NATPMP_PROTOCOL_TCP : NATPMP_PROTOCOL_UDP, w.port, w.port,
                              3600);
    natpmpresp_t resp;
    int r;
    do {
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(n.s, &fds);
      timeval tv;
      getnatpmprequesttimeout(&n, &tv);
      select(n.s + 1, &fds, nullptr, nullptr, &tv);
      r = readnatpmpresponseorretry(&n, &resp);
    } while (r == NATPMP_TRYAGAIN);
    if (r >= 0) ++ok;
  }
  closenatpmp(&n);
  return ok;
}

int Upnp(const char* url, const char* client) {
  UPNPUrls urls{};
  IGDdatas data{};
  char lan[64];
  if (!UPNP_GetIGDFromUrl(url, &urls, &data, lan, sizeof lan)) return 0;
  int ok = 0;
  for (const Want& w : Plan()) {
    const std::string port = std::to_string(w.port);
    if (UPNP_AddPortMapping(urls.controlURL, data.first.servicetype, port.c_str(), port.c_str(),
                            client, "raw floor", w.tcp ? "TCP" : "UDP", nullptr,
                            "3600") == UPNPCOMMAND_SUCCESS) {
      ++ok;
    }
  }
  FreeUPNPUrls(&urls);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(
        stderr,
        "usage: raw_floor pcp GATEWAY CLIENT | natpmp GATEWAY | upnp ROOT_DESC_URL CLIENT\n");
    return 2;
  }
  const std::string mode = argv[1];
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  if (mode == "pcp" && argc == 4)
    ok = Pcp(argv[2], argv[3]);
  else if (mode == "natpmp")
    ok = NatPmp(argv[2]);
  else if (mode == "upnp" && argc == 4)
    ok = Upnp(argv[2], argv[3]);
  else
    return 2;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("%lld\n", static_cast<long long>(ms));
  return ok == 122 ? 0 : 1;
}
