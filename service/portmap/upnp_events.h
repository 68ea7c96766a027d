// GENA events of the UPnP IGD in use (UPnP Device Architecture 1.1, section 4): natpilotd
// subscribes to the WANIPConnection service's events, so a new ExternalIPAddress reaches it within
// a second instead of at the next periodic check. The subscription is renewed at half its granted
// time and made again when the IGD forgot it (412, a reboot) or another IGD is chosen.
//
// A NOTIFY is accepted only from the IGD's host, on the address that faces it, with the SID of
// the current subscription; what it says is a hint: the reconciler asks the gateway before the
// address counts (as for NAT-PMP and PCP announcements). One thread; each NOTIFY is read with a
// 2-second deadline and 64 KiB at most.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/error.h"

namespace natpilot {
namespace upnp {

inline constexpr size_t kMaxNotifyBytes = 64 * 1024;

struct Notify {
  std::string sid;
  uint32_t seq = 0;
  // The propertyset's ExternalIPAddress when it has one, as sent (digits, dots, colons, hex
  // letters only, at most 45 bytes; anything else is treated as absent).
  std::optional<std::string> external_address;
};

// Bytes of a complete request at the start of `raw` (headers and Content-Length body); nullopt
// while the headers are not complete.
std::optional<size_t> RequestLength(std::string_view raw);
// A GENA NOTIFY request (pure, fuzzed): "NOTIFY <path> HTTP/1.x", NT: upnp:event,
// NTS: upnp:propchange, a SID, a SEQ, a body of Content-Length bytes (no chunked body).
Result<Notify> ParseNotify(std::string_view raw);
// The text of the first <[prefix:]name> element in `xml`, trimmed; nullopt when there is none.
std::optional<std::string> PropertyText(std::string_view xml, std::string_view name);
// "Second-1800" -> 1800; "infinite" -> 0; nullopt for anything else.
std::optional<uint32_t> ParseTimeout(std::string_view header);

}  // namespace upnp

class UpnpEvents {
 public:
  struct Options {
    std::chrono::seconds requested_timeout{1800};
    std::chrono::milliseconds http_timeout{2000};
    std::chrono::seconds retry_min{15};
    std::chrono::seconds retry_max{300};
    // A subscription is never renewed more often (nor renewed again on a new probe sooner).
    std::chrono::seconds min_renew{5};
  };
  // sender: the IGD's address; address: the ExternalIPAddress it announced (maybe "").
  using Callback = std::function<void(const std::string& sender, const std::string& address)>;
  // What happened to the subscription, for the log (problem: a warning); on the events' thread.
  using StatusCallback = std::function<void(const std::string& status, bool problem)>;

  UpnpEvents() : UpnpEvents(Options{}) {}
  explicit UpnpEvents(Options options);
  ~UpnpEvents();
  UpnpEvents(const UpnpEvents&) = delete;
  UpnpEvents& operator=(const UpnpEvents&) = delete;

  Result<void> Start(Callback callback, StatusCallback on_status = {});
  // The event URL of the IGD now in use ("" = none, or one that offers no events). Thread-safe;
  // the same URL again makes a failed subscription try again at once.
  void Follow(const std::string& event_url);
  // Unsubscribes (best effort, bounded by http_timeout) and joins the thread.
  void Stop();
  // For people: subscribed or not, and why.
  std::string Status() const;
  uint64_t NotifiesRejected() const { return rejected_; }

 private:
  void Run();
  void Switch();
  void Subscribe();
  void Renew();
  void Unsubscribe();
  bool Listen(const std::string& local);
  // False when accept() failed for want of descriptors (the caller backs off).
  bool HandleConnection();
  void Renewed();
  void SetStatus(std::string status, bool problem);
  void Failed(const std::string& why);
  std::chrono::seconds RenewEvery() const;

  Options options_;
  Callback callback_;
  StatusCallback on_status_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> rejected_{0};

  mutable std::mutex mu_;
  std::string wanted_;                         // under mu_
  bool retry_now_ = false;                     // under mu_
  std::string status_ = "no UPnP IGD in use";  // under mu_

  // The thread's own.
  std::string following_;
  std::string host_;  // the IGD's address (the event URL's host)
  int listen_fd_ = -1;
  std::string local_;  // the address listen_fd_ is bound to
  uint16_t port_ = 0;
  std::string sid_;
  uint32_t granted_s_ = 0;
  uint32_t failures_ = 0;
  std::string last_problem_;
  std::chrono::steady_clock::time_point next_at_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point renewed_at_{};  // the last SUBSCRIBE that succeeded
  std::chrono::steady_clock::time_point expires_at_{};  // when the IGD drops it unless renewed
};

}  // namespace natpilot
