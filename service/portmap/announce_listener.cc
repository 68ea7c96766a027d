#include "portmap/announce_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "portmap/pcp_codec.h"

namespace natpilot {

std::optional<AnnounceListener::Announcement> AnnounceListener::Decode(std::span<const uint8_t> d) {
  // NAT-PMP (RFC 6886 3.2): version 0, opcode 128, result 0, epoch, external address: 12 bytes.
  if (d.size() == 12 && d[0] == 0 && d[1] == 128) {
    if (d[2] != 0 || d[3] != 0)
      return std::nullopt;  // a result other than SUCCESS announces nothing
    Announcement a;
    a.what = "NAT-PMP announcement";
    a.epoch_s = uint32_t(d[4]) << 24 | uint32_t(d[5]) << 16 | uint32_t(d[6]) << 8 | d[7];
    char text[INET_ADDRSTRLEN];
    in_addr addr{};
    std::memcpy(&addr, d.data() + 8, 4);
    inet_ntop(AF_INET, &addr, text, sizeof text);
    a.external_address = text;
    return a;
  }
  auto resp = pcp::DecodeResponse(d);
  if (!resp || resp->opcode != pcp::Opcode::kAnnounce) return std::nullopt;
  return Announcement{"PCP ANNOUNCE", resp->epoch_s, ""};
}

Result<void> AnnounceListener::Start(Callback callback, uint16_t port) {
  callback_ = std::move(callback);
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const std::string err = std::strerror(errno);
    Stop();
    return Fail(Errc::kUnavailable, "cannot listen for PCP and NAT-PMP announcements on UDP " +
                                        std::to_string(port) + ": " + err);
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Run(); });
  return {};
}

void AnnounceListener::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (fd_ >= 0) ::close(fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  fd_ = stop_fd_ = -1;
}

void AnnounceListener::Run() {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    uint8_t buf[1100];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) continue;
    auto announcement = Decode(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    if (!announcement) continue;
    char sender[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, sender, sizeof sender);
    try {
      callback_(sender, *announcement);
    } catch (...) {
      // A callback must not take the listener down; the periodic check still runs.
    }
  }
}

}  // namespace natpilot
