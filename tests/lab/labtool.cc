// Small network tools for the lab, run inside its namespaces:
//   labtool stun PORT                         a STUN binding responder (RFC 5389 answers)
//   labtool listen udp|tcp PORT TIMEOUT_MS    print the first payload received; exit 3 on timeout
//   labtool send udp|tcp HOST PORT PAYLOAD    send one payload (tcp: connect, send, close)
//   labtool announce HOST COUNT EPOCH         COUNT unsolicited PCP ANNOUNCE responses (RFC 6887
//                                             14.1.3) to HOST:5350, as fast as it can
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

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
    const unsigned char mapped[12] = {0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
                                      static_cast<unsigned char>(p >> 8), static_cast<unsigned char>(p),
                                      static_cast<unsigned char>(a >> 24), static_cast<unsigned char>(a >> 16),
                                      static_cast<unsigned char>(a >> 8), static_cast<unsigned char>(a)};
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
  } else if (sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
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
    return Announce(argv[2], std::atoi(argv[3]), static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10)));
  }
  std::fprintf(stderr,
               "usage: labtool stun PORT | listen udp|tcp PORT TIMEOUT_MS | "
               "send udp|tcp HOST PORT PAYLOAD | announce HOST COUNT EPOCH\n");
  return 2;
}
