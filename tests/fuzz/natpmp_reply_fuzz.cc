// libFuzzer target for NAT-PMP replies: each input is sent as one UDP datagram over loopback to a
// libnatpmp session that waits for an answer, as natpilotd's does, and read back with
// readnatpmpresponseorretry. Whatever the bytes, the read must return a result or an error.
#include <arpa/inet.h>
#include <fcntl.h>
#include <natpmp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace {

struct Loopback {
  int session = -1;  // libnatpmp's socket
  int gateway = -1;  // plays the gateway
  sockaddr_in session_addr{};
  Loopback() {
    session = socket(AF_INET, SOCK_DGRAM, 0);
    gateway = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof session_addr;
    if (bind(session, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
        bind(gateway, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
        getsockname(session, reinterpret_cast<sockaddr*>(&session_addr), &len) != 0) {
      std::abort();
    }
    fcntl(session, F_SETFL, O_NONBLOCK);  // as initnatpmp leaves it
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Loopback lo;
  if (size > 1100) return 0;
  sendto(lo.gateway, data, size, 0, reinterpret_cast<sockaddr*>(&lo.session_addr),
         sizeof lo.session_addr);
  natpmp_t n{};
  n.s = lo.session;
  n.gateway = htonl(INADDR_LOOPBACK);
  n.has_pending_request = 1;
  n.pending_request[0] = 0;  // version 0
  n.pending_request[1] = 0;  // public address request
  n.pending_request_len = 2;
  n.try_number = 9;  // beyond the last retry: never sends
  n.retry_time.tv_sec = 0x7fffffff;
  natpmpresp_t resp{};
  const int r = readnatpmpresponseorretry(&n, &resp);
  if (r >= 0 && resp.type == NATPMP_RESPTYPE_PUBLICADDRESS)
    (void)inet_ntoa(resp.pnu.publicaddress.addr);
  return 0;
}
