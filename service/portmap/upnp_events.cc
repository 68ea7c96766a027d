#include "portmap/upnp_events.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "portmap/netutil.h"
#include "portmap/upnp_description.h"
#include "portmap/upnp_http.h"

namespace natpilot {
namespace upnp {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool Digits(std::string_view s) {
  return !s.empty() && s.size() <= 10 &&
         s.find_first_not_of("0123456789") == std::string_view::npos;
}

// A SID as GENA sends it ("uuid:..."): printable ASCII without spaces, bounded.
bool SidText(std::string_view s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

std::optional<size_t> RequestLength(std::string_view raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  const std::string len = HeaderValue(raw.substr(0, head_end), "content-length");
  size_t body = 0;
  if (Digits(len)) body = static_cast<size_t>(std::stoull(len));
  return head_end + 4 + std::min(body, kMaxNotifyBytes);
}

std::optional<std::string> PropertyText(std::string_view xml, std::string_view name) {
  size_t pos = 0;
  while ((pos = xml.find('<', pos)) != std::string_view::npos) {
    const size_t gt = xml.find('>', pos);
    if (gt == std::string_view::npos) return std::nullopt;
    std::string_view tag = xml.substr(pos + 1, gt - pos - 1);  // "e:ExternalIPAddress", "/x", ...
    pos = gt + 1;
    if (tag.empty() || tag.front() == '/' || tag.front() == '?' || tag.front() == '!') continue;
    tag = tag.substr(0, tag.find_first_of(" \t\r\n/"));
    if (const size_t colon = tag.find(':'); colon != std::string_view::npos)
      tag.remove_prefix(colon + 1);
    if (tag != name) continue;
    if (xml[gt - 1] == '/') return std::string();  // <ExternalIPAddress/>
    const size_t close = xml.find('<', pos);
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(Trim(xml.substr(pos, close - pos)));
  }
  return std::nullopt;
}

std::optional<uint32_t> ParseTimeout(std::string_view header) {
  header = Trim(header);
  if (header.size() == 8 &&
      std::equal(header.begin(), header.end(), "infinite",
                 [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; })) {
    return 0;
  }
  constexpr std::string_view kPrefix = "second-";
  if (header.size() <= kPrefix.size()) return std::nullopt;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kPrefix[i]) return std::nullopt;
  }
  const std::string_view n = header.substr(kPrefix.size());
  if (!Digits(n)) return std::nullopt;
  const unsigned long long v = std::stoull(std::string(n));
  return static_cast<uint32_t>(std::min<unsigned long long>(v, 86400ULL * 365));
}

Result<Notify> ParseNotify(std::string_view raw) {
  if (raw.size() > kMaxNotifyBytes + 16384) return Fail(Errc::kInvalidArgument, "NOTIFY too large");
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return Fail(Errc::kInvalidArgument, "no end of headers");
  const std::string_view head = raw.substr(0, head_end);
  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  if (line.substr(0, 7) != "NOTIFY " ||
      (line.substr(line.size() >= 9 ? line.size() - 9 : 0) != " HTTP/1.1" &&
       line.substr(line.size() >= 9 ? line.size() - 9 : 0) != " HTTP/1.0")) {
    return Fail(Errc::kInvalidArgument, "not a NOTIFY request");
  }
  const std::string_view headers = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  if (HeaderValue(headers, "nt") != "upnp:event" ||
      HeaderValue(headers, "nts") != "upnp:propchange") {
    return Fail(Errc::kInvalidArgument, "not a GENA event (NT upnp:event, NTS upnp:propchange)");
  }
  Notify out;
  out.sid = HeaderValue(headers, "sid");
  if (!SidText(out.sid)) return Fail(Errc::kInvalidArgument, "no usable SID");
  const std::string seq = HeaderValue(headers, "seq");
  if (!Digits(seq) || std::stoull(seq) > UINT32_MAX)
    return Fail(Errc::kInvalidArgument, "no usable SEQ");
  out.seq = static_cast<uint32_t>(std::stoull(seq));
  if (!HeaderValue(headers, "transfer-encoding").empty()) {
    return Fail(Errc::kInvalidArgument, "a chunked NOTIFY body is not read");
  }
  const std::string len = HeaderValue(headers, "content-length");
  if (!Digits(len)) return Fail(Errc::kInvalidArgument, "no usable Content-Length");
  const size_t n = static_cast<size_t>(std::stoull(len));
  const std::string_view body = raw.substr(head_end + 4);
  if (n > kMaxNotifyBytes || n > body.size()) {
    return Fail(Errc::kInvalidArgument, "body shorter than its Content-Length or too large");
  }
  if (auto v = PropertyText(body.substr(0, n), "ExternalIPAddress")) {
    if (v->size() <= 45 && v->find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos) {
      out.external_address = std::move(*v);
    }
  }
  return out;
}

}  // namespace upnp

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::string_view kCallbackPath = "/natpilot/gena";

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int MsUntil(SteadyClock::time_point t) {
  if (t == SteadyClock::time_point::max()) return -1;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - SteadyClock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(std::min<long long>(ms, 3'600'000));
}

}  // namespace

UpnpEvents::UpnpEvents(Options options) : options_(options) {}

UpnpEvents::~UpnpEvents() {
  Stop();
  CloseFd(wake_fd_);
}

Result<void> UpnpEvents::Start(Callback callback, StatusCallback on_status) {
  callback_ = std::move(callback);
  on_status_ = std::move(on_status);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    return Fail(Errc::kUnavailable, std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { Run(); });
  return {};
}

void UpnpEvents::Follow(const std::string& event_url) {
  {
    std::lock_guard lock(mu_);
    if (event_url == wanted_) {
      retry_now_ = true;
    } else {
      wanted_ = event_url;
    }
  }
  if (wake_fd_ >= 0) {  // set before the thread starts, closed only by the destructor
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

void UpnpEvents::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

std::string UpnpEvents::Status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void UpnpEvents::SetStatus(std::string status, bool problem) {
  // A problem is told once until it changes or goes away (a retry every few minutes is quiet).
  const bool tell = !problem || status != last_problem_;
  last_problem_ = problem ? status : std::string();
  if (tell && on_status_) on_status_(status, problem);
  std::lock_guard lock(mu_);
  status_ = std::move(status);
}

void UpnpEvents::Run() {
  while (!stopping_) {
    bool retry = false;
    {
      std::lock_guard lock(mu_);
      retry = std::exchange(retry_now_, false);
      if (wanted_ != following_) retry = false;
    }
    Switch();
    // The IGD was probed again (after an outage, a restart, the periodic probe): a failed
    // subscription is tried now, a live one renewed now if it was not just renewed (an IGD that
    // restarted forgot it and answers 412; one whose address towards us changed needs a new one).
    if (retry && !following_.empty() &&
        (sid_.empty() || SteadyClock::now() >= renewed_at_ + options_.min_renew)) {
      next_at_ = SteadyClock::now();
    }
    if (SteadyClock::now() >= next_at_) {
      if (sid_.empty()) {
        Subscribe();
      } else {
        Renew();
      }
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    const int n = ::poll(fds, listen_fd_ >= 0 ? 2 : 1, MsUntil(next_at_));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) {
      uint64_t v = 0;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
    if (listen_fd_ >= 0 && (fds[1].revents & POLLIN) && !HandleConnection()) {
      // accept() failed (out of descriptors): wait a second instead of spinning on a readable
      // socket.
      pollfd wake{wake_fd_, POLLIN, 0};
      (void)::poll(&wake, 1, 1000);
    }
  }
  Unsubscribe();
  CloseFd(listen_fd_);
}

void UpnpEvents::Switch() {
  std::string wanted;
  {
    std::lock_guard lock(mu_);
    wanted = wanted_;
  }
  if (wanted == following_) return;
  Unsubscribe();
  following_ = wanted;
  failures_ = 0;
  host_.clear();
  next_at_ = SteadyClock::time_point::max();
  if (following_.empty()) {
    CloseFd(listen_fd_);
    SetStatus("not subscribed: the IGD in use offers no event URL, or no IGD is in use", false);
    return;
  }
  auto url = upnp::ParseHttpUrl(following_);
  if (!url) {
    SetStatus(
        "not subscribed: the event URL " + upnp::Sanitize(following_, 160) + " is not http://IPv4",
        true);
    return;
  }
  host_ = url->host;
  next_at_ = SteadyClock::now();
}

bool UpnpEvents::Listen(const std::string& local) {
  if (listen_fd_ >= 0 && local == local_) return true;
  CloseFd(listen_fd_);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, local.c_str(), &addr.sin_addr) != 1) return false;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return false;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    CloseFd(listen_fd_);
    return false;
  }
  local_ = local;
  port_ = ntohs(addr.sin_port);
  return true;
}

void UpnpEvents::Failed(const std::string& why) {
  ++failures_;
  const auto delay = std::min<std::chrono::seconds>(
      options_.retry_max, options_.retry_min * (1LL << std::min<uint32_t>(failures_ - 1, 8)));
  next_at_ = SteadyClock::now() + delay;
  SetStatus("not subscribed to " + upnp::Sanitize(following_, 160) + ": " + why + " (next try in " +
                std::to_string(delay.count()) + " s)",
            true);
}

// Half the granted time (0 = "infinite": half of what was asked), at least min_renew.
std::chrono::seconds UpnpEvents::RenewEvery() const {
  const auto granted =
      granted_s_ == 0 ? options_.requested_timeout : std::chrono::seconds(granted_s_);
  return std::max(options_.min_renew, granted / 2);  // a 1 s grant is renewed every min_renew
}

void UpnpEvents::Subscribe() {
  sid_.clear();
  auto url = upnp::ParseHttpUrl(following_);
  if (!url) return;
  auto local = LocalAddressTowards(host_);
  if (!local) return Failed("no route to " + host_ + ": " + local.error().message);
  if (!Listen(*local)) return Failed("cannot listen on " + *local);
  const std::string headers = "CALLBACK: <http://" + local_ + ":" + std::to_string(port_) +
                              std::string(kCallbackPath) +
                              ">\r\nNT: upnp:event\r\nTIMEOUT: Second-" +
                              std::to_string(options_.requested_timeout.count()) + "\r\n";
  auto answer = upnp::HttpRequest("SUBSCRIBE", *url, headers, options_.http_timeout, 4096);
  if (!answer) return Failed(answer.error().message);
  if (answer->status != 200) {
    return Failed("the IGD answered HTTP " + std::to_string(answer->status));
  }
  const std::string sid = upnp::HeaderValue(answer->head, "sid");
  if (sid.empty() || sid.size() > 128 ||
      !std::all_of(sid.begin(), sid.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return Failed("the IGD's answer has no usable SID");
  }
  sid_ = sid;
  const auto granted = upnp::ParseTimeout(upnp::HeaderValue(answer->head, "timeout"));
  granted_s_ = granted.value_or(static_cast<uint32_t>(options_.requested_timeout.count()));
  Renewed();
  const auto every = RenewEvery();
  next_at_ = SteadyClock::now() + every;
  failures_ = 0;
  SetStatus(
      "subscribed to " + upnp::Sanitize(following_, 160) + " (granted " +
          (granted_s_ == 0 ? std::string("without limit") : std::to_string(granted_s_) + " s") +
          ", renewed every " + std::to_string(every.count()) + " s; events to " + local_ + ":" +
          std::to_string(port_) + ")",
      false);
}

void UpnpEvents::Renewed() {
  renewed_at_ = SteadyClock::now();
  expires_at_ = granted_s_ == 0 ? SteadyClock::time_point::max()
                                : renewed_at_ + std::chrono::seconds(granted_s_);
}

void UpnpEvents::Renew() {
  auto url = upnp::ParseHttpUrl(following_);
  if (!url) return;
  // Our address towards the IGD changed (DHCP gave this host another): the CALLBACK is stale.
  if (auto local = LocalAddressTowards(host_); local && *local != local_) {
    if (on_status_)
      on_status_("this host's address towards the IGD is now " + *local + "; subscribing again",
                 false);
    Unsubscribe();
    return Subscribe();
  }
  auto answer = upnp::HttpRequest("SUBSCRIBE", *url,
                                  "SID: " + sid_ + "\r\nTIMEOUT: Second-" +
                                      std::to_string(options_.requested_timeout.count()) + "\r\n",
                                  options_.http_timeout, 4096);
  if (answer && answer->status == 200) {
    const auto granted = upnp::ParseTimeout(upnp::HeaderValue(answer->head, "timeout"));
    granted_s_ = granted.value_or(granted_s_);
    Renewed();
    next_at_ = SteadyClock::now() + RenewEvery();
    if (!last_problem_.empty()) {
      SetStatus("subscribed to " + upnp::Sanitize(following_, 160) + " (renewed again; events to " +
                    local_ + ":" + std::to_string(port_) + ")",
                false);
    }
    return;
  }
  // Not a 412 (a timeout, a 5xx): the subscription may still be alive; the renewal is tried again
  // until it would have lapsed, then a new one is made.
  if (!(answer && answer->status == 412) && SteadyClock::now() < expires_at_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(expires_at_ - SteadyClock::now());
    next_at_ =
        SteadyClock::now() + std::clamp(left / 2, std::chrono::seconds(1), options_.retry_min);
    SetStatus("renewal of " + sid_ + " failed (" +
                  (answer ? "HTTP " + std::to_string(answer->status) : answer.error().message) +
                  "); trying again",
              true);
    return;
  }
  // 412: the IGD no longer knows the SID (it restarted, or the subscription lapsed). Subscribe
  // again; the first NOTIFY of a new subscription carries every evented value.
  if (on_status_) {
    on_status_(
        "renewal of " + sid_ + " " +
            (answer ? "answered HTTP " + std::to_string(answer->status) : answer.error().message) +
            "; subscribing again",
        false);
  }
  sid_.clear();
  Subscribe();
}

void UpnpEvents::Unsubscribe() {
  if (sid_.empty()) return;
  if (auto url = upnp::ParseHttpUrl(following_)) {
    (void)upnp::HttpRequest("UNSUBSCRIBE", *url, "SID: " + sid_ + "\r\n",
                            std::min(options_.http_timeout, std::chrono::milliseconds(1000)), 4096);
  }
  sid_.clear();
}

bool UpnpEvents::HandleConnection() {
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  const int fd =
      ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED;
  char text[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
  const std::string sender = text;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (sender != host_) {  // only the IGD in use may tell; nothing is read from anyone else
    ++rejected_;
    return true;
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(2);
  std::string raw;
  char buf[4096];
  while (true) {
    if (auto need = upnp::RequestLength(raw); need && raw.size() >= *need) break;
    if (raw.size() > upnp::kMaxNotifyBytes + 16384) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, MsUntil(deadline)) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  auto notify = upnp::ParseNotify(raw);
  const char* reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  if (!notify) {
    reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  } else if (sid_.empty() || notify->sid != sid_) {
    reply = "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  }
  (void)::send(fd, reply, std::strlen(reply), MSG_NOSIGNAL);
  if (!notify || notify->sid != sid_) {
    ++rejected_;
    return true;
  }
  if (notify->external_address && callback_) callback_(sender, *notify->external_address);
  return true;
}

}  // namespace natpilot
