// Small network tools for the lab, run inside its namespaces:
//   labtool stun PORT                         a STUN binding responder (RFC 5389 answers)
//   labtool listen udp|tcp PORT TIMEOUT_MS    print the first payload received; exit 3 on timeout
//   labtool send udp|tcp HOST PORT PAYLOAD    send one payload (tcp: connect, send, close)
//   labtool announce HOST COUNT EPOCH         COUNT unsolicited PCP ANNOUNCE responses (RFC 6887
//                                             14.1.3) to HOST:5350, as fast as it can
//   labtool spoof SRC DST DPORT COUNT [KINDS] COUNT hostile PCP / NAT-PMP packets to DST:DPORT that
//                                             claim to come from SRC:5351 (a raw socket): spoofed
//                                             ANNOUNCEs and address announcements, answers with
//                                             unknown nonces, truncated and oversized packets
//   labtool hold HOST PORT COUNT MODE SECONDS COUNT TCP connections to HOST:PORT held open for
//                                             SECONDS: idle (nothing sent), slow (a request's
//                                             header, one byte a second, never finished) or stream
//                                             (GET /api/stream, never read); prints how many opened
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

int Die(const char* what) {
  std::perror(what);
  return 2;
}

int Socket(bool tcp, uint16_t port) {
  const int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (port != 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  return fd;
}

// Answers every binding request from the address it came from, with MAPPED-ADDRESS and
// XOR-MAPPED-ADDRESS set to that address: what miniupnpd's STUN check needs to see an
// unrestricted external address.
int Stun(uint16_t port) {
  const int fd = Socket(false, port);
  if (fd < 0) return Die("stun bind");
  unsigned char buf[1500];
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 20 || buf[0] != 0x00 || buf[1] != 0x01) continue;
    unsigned char out[20 + 12 + 12];
    out[0] = 0x01;
    out[1] = 0x01;
    out[2] = 0;
    out[3] = 24;
    std::memcpy(out + 4, buf + 4, 16);  // magic cookie and transaction id
    const uint16_t p = ntohs(from.sin_port);
    const uint32_t a = ntohl(from.sin_addr.s_addr);
    unsigned char* m = out + 20;  // MAPPED-ADDRESS
    const unsigned char mapped[12] = {0x00,
                                      0x01,
                                      0x00,
                                      0x08,
                                      0x00,
                                      0x01,
                                      static_cast<unsigned char>(p >> 8),
                                      static_cast<unsigned char>(p),
                                      static_cast<unsigned char>(a >> 24),
                                      static_cast<unsigned char>(a >> 16),
                                      static_cast<unsigned char>(a >> 8),
                                      static_cast<unsigned char>(a)};
    std::memcpy(m, mapped, 12);
    unsigned char* x = out + 32;  // XOR-MAPPED-ADDRESS
    std::memcpy(x, mapped, 12);
    x[0] = 0x00;
    x[1] = 0x20;
    x[6] ^= 0x21;
    x[7] ^= 0x12;
    for (int i = 0; i < 4; ++i) x[8 + i] ^= buf[4 + i];
    sendto(fd, out, sizeof out, 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

int Listen(bool tcp, uint16_t port, int timeout_ms) {
  const int fd = Socket(tcp, port);
  if (fd < 0) return Die("listen bind");
  if (tcp && listen(fd, 4) != 0) return Die("listen");
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return 3;
  char buf[2048];
  ssize_t n = 0;
  if (tcp) {
    const int c = accept(fd, nullptr, nullptr);
    pollfd q{c, POLLIN, 0};
    if (poll(&q, 1, timeout_ms) <= 0) return 3;
    n = recv(c, buf, sizeof buf - 1, 0);
  } else {
    n = recv(fd, buf, sizeof buf - 1, 0);
  }
  if (n <= 0) return 3;
  std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
  std::fputc('\n', stdout);
  return 0;
}

int Send(bool tcp, const char* host, uint16_t port, const std::string& payload) {
  const int fd = Socket(tcp, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) return Die("address");
  if (tcp) {
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return Die("connect");
    if (send(fd, payload.data(), payload.size(), 0) < 0) return Die("send");
    usleep(100000);
  } else if (sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                    sizeof to) < 0) {
    return Die("sendto");
  }
  close(fd);
  return 0;
}

// A PCP ANNOUNCE response (RFC 6887 7.2): version 2, R bit with opcode 0, result SUCCESS,
// lifetime 0, the epoch, 12 reserved bytes.
int Announce(const char* host, int count, uint32_t epoch) {
  const int fd = Socket(false, 0);  // 5351 is the gateway's own: any source port will do
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5350);
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) return Die("address");
  unsigned char packet[24] = {2, 0x80, 0, 0};
  const uint32_t e = htonl(epoch);
  std::memcpy(packet + 8, &e, sizeof e);
  for (int i = 0; i < count; ++i) {
    if (sendto(fd, packet, sizeof packet, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
      return Die("sendto");
    }
  }
  close(fd);
  return 0;
}

// The hostile payloads, in turn: what a LAN host can send natpilotd's PCP/NAT-PMP client and its
// announcement listener while pretending to be the gateway.
std::vector<unsigned char> HostilePayload(int i, std::mt19937& rng) {
  std::vector<unsigned char> p;
  auto u32 = [&p](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) p.push_back(static_cast<unsigned char>(v >> s));
  };
  switch (i % 8) {
    case 0:  // PCP ANNOUNCE claiming a restart (epoch 0)
      p = {2, 0x80, 0, 0};
      u32(0);
      u32(0);
      p.resize(24, 0);
      break;
    case 1:  // NAT-PMP public address announcement: another external address
      p = {0, 128, 0, 0};
      u32(1);
      p.insert(p.end(), {198, 51, 100, 99});
      break;
    case 2: {  // a PCP MAP answer with a nonce nobody sent, SUCCESS, another external address
      p = {2, 0x81, 0, 0};
      u32(7200);
      u32(5);
      p.resize(24, 0);
      for (int k = 0; k < 12; ++k) p.push_back(static_cast<unsigned char>(rng()));
      p.insert(p.end(), {17, 0, 0, 0, 0x13, 0xc4, 0x13, 0xc4});
      p.insert(p.end(), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 99});
      break;
    }
    case 3:  // truncated
      p.assign(1 + rng() % 7, 2);
      break;
    case 4:  // oversized PCP with garbage options
      p = {2, 0x81, 0, 0};
      while (p.size() < 1100) p.push_back(static_cast<unsigned char>(rng()));
      break;
    case 5:  // a NAT-PMP mapping answer for a port nobody asked for
      p = {0, 129, 0, 0};
      u32(1);
      p.insert(p.end(), {0x27, 0x10, 0x27, 0x10});
      u32(3600);
      break;
    case 6:  // NAT-PMP with an error result and junk after it
      p = {0, 128, 0, 3};
      while (p.size() < 40) p.push_back(static_cast<unsigned char>(rng()));
      break;
    default:  // random bytes
      p.resize(rng() % 64);
      for (auto& b : p) b = static_cast<unsigned char>(rng());
  }
  return p;
}

// kinds "pcp": only what a nonce check must catch (PCP with a version byte of 2, truncated and
// random bytes): what can be sent to natpilotd's own client sockets. NAT-PMP answers carry no
// nonce (RFC 6886): one forged with the router's address and the socket's port cannot be told from
// the router's, by natpilotd or anyone (README: what does not work).
int Spoof(const char* src, const char* dst, uint16_t dport, int count, const std::string& kinds) {
  const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // IP_HDRINCL implied
  if (fd < 0) return Die("raw socket");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (inet_pton(AF_INET, dst, &to.sin_addr) != 1) return Die("destination address");
  in_addr from{};
  if (inet_pton(AF_INET, src, &from) != 1) return Die("source address");
  std::mt19937 rng(4242);
  for (int i = 0; i < count; ++i) {
    static constexpr int kPcpKinds[] = {0, 2, 3, 4, 7};
    std::vector<unsigned char> payload = HostilePayload(kinds == "pcp" ? kPcpKinds[i % 5] : i, rng);
    if (kinds == "pcp" && !payload.empty()) payload[0] = 2;
    std::vector<unsigned char> packet(sizeof(iphdr) + sizeof(udphdr) + payload.size());
    auto* ip = reinterpret_cast<iphdr*>(packet.data());
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = from.s_addr;
    ip->daddr = to.sin_addr.s_addr;
    ip->tot_len = htons(static_cast<uint16_t>(packet.size()));  // the kernel fills the checksum
    auto* udp = reinterpret_cast<udphdr*>(packet.data() + sizeof(iphdr));
    udp->source = htons(5351);
    udp->dest = htons(dport);
    udp->len = htons(static_cast<uint16_t>(sizeof(udphdr) + payload.size()));
    udp->check = 0;  // none (allowed over IPv4)
    std::memcpy(packet.data() + sizeof(iphdr) + sizeof(udphdr), payload.data(), payload.size());
    if (sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) <
        0) {
      return Die("sendto");
    }
  }
  close(fd);
  return 0;
}

int Hold(const char* host, uint16_t port, int count, const std::string& mode, int seconds) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) return Die("address");
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return Die("socket");
    (void)connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    fds.push_back(fd);
  }
  // Connected, or refused, within 5 s in all (past the server's backlog a connect stays pending).
  int opened = 0;
  std::vector<pollfd> pending;
  for (int fd : fds) pending.push_back({fd, POLLOUT, 0});
  const time_t deadline = time(nullptr) + 5;
  while (!pending.empty() && time(nullptr) < deadline) {
    if (poll(pending.data(), pending.size(), 200) <= 0) continue;
    std::vector<pollfd> still;
    for (const pollfd& p : pending) {
      if (p.revents == 0) {
        still.push_back({p.fd, POLLOUT, 0});
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++opened;
    }
    pending.swap(still);
  }
  const std::string stream = "GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const std::string slow = "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  if (mode == "stream") {
    for (int fd : fds) (void)send(fd, stream.data(), stream.size(), MSG_NOSIGNAL);
  }
  std::printf("%d\n", opened);
  std::fflush(stdout);
  const time_t end = time(nullptr) + seconds;
  for (size_t sent = 0; time(nullptr) < end; ++sent) {
    if (mode == "slow") {
      for (int fd : fds) (void)send(fd, &slow[sent % slow.size()], 1, MSG_NOSIGNAL);
    }
    sleep(1);
  }
  for (int fd : fds) close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "stun" && argc == 3) return Stun(static_cast<uint16_t>(std::atoi(argv[2])));
  const bool tcp = argc > 2 && std::strcmp(argv[2], "tcp") == 0;
  if (cmd == "listen" && argc == 5) {
    return Listen(tcp, static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]));
  }
  if (cmd == "send" && argc == 6) {
    return Send(tcp, argv[3], static_cast<uint16_t>(std::atoi(argv[4])), argv[5]);
  }
  if (cmd == "announce" && argc == 5) {
    return Announce(argv[2], std::atoi(argv[3]),
                    static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10)));
  }
  if (cmd == "spoof" && (argc == 6 || argc == 7)) {
    return Spoof(argv[2], argv[3], static_cast<uint16_t>(std::atoi(argv[4])), std::atoi(argv[5]),
                 argc == 7 ? argv[6] : "all");
  }
  if (cmd == "hold" && argc == 7) {
    return Hold(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atoi(argv[4]), argv[5],
                std::atoi(argv[6]));
  }
  std::fprintf(
      stderr,
      "usage: labtool stun PORT | listen udp|tcp PORT TIMEOUT_MS | "
      "send udp|tcp HOST PORT PAYLOAD | announce HOST COUNT EPOCH | "
      "spoof SRC DST DPORT COUNT [all|pcp] | hold HOST PORT COUNT idle|slow|stream SECONDS\n");
  return 2;
}
