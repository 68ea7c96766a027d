// Who is calling, decided once for both edges (gRPC and the status page's HTTP) from what the
// transport says and the bearer token; then checked against what the call touches. Also the
// per-caller rate limit. Knows nothing of gRPC or HTTP: each edge fills in Credentials.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "app/tokens.h"
#include "core/error.h"
#include "store/store.h"

namespace natpilot {

struct Caller {
  enum class Role { kAdmin, kDevice };
  Role role = Role::kAdmin;
  std::string device;   // kDevice: the device the token belongs to
  std::string label;    // for events: "admin via unix socket", "device ata1 from 192.168.1.20"
  std::string peer_ip;  // TCP peer address; empty over the unix socket
  bool admin() const { return role == Role::kAdmin; }
};

// Whose limits a call counts against: one per token, whatever the address it comes from.
std::string TokenKey(const Caller& caller);

// What an edge knows of a call before it is authenticated.
struct Credentials {
  bool unix_socket = false;  // the unix socket is the admin (its file mode guards it)
  std::string peer_ip;       // TCP peer address
  // The authorization value exactly as it arrived ("Bearer TOKEN"); nullopt when there was none.
  std::optional<std::string_view> authorization;
  // How this edge carries the token, for the refusal: "\"authorization: Bearer TOKEN\" metadata".
  std::string_view carrier;
  // Added to the caller's label after "admin token": " via web" (events say where a change came
  // from).
  std::string_view via;
};

struct AuthOptions {
  std::string admin_token_hash;  // HashToken of the admin token; empty = no admin token over TCP
  // A device token is accepted only from the device's registered address.
  bool device_calls_from_own_address = false;
};

class Authenticator {
 public:
  Authenticator(const Store& store, AuthOptions options)
      : store_(store), options_(std::move(options)) {}
  // The unix socket is admin. Over TCP: UNAUTHENTICATED without a valid bearer token;
  // PERMISSION_DENIED for a device token used from elsewhere when that is required.
  Result<Caller> Authenticate(const Credentials& credentials) const;

 private:
  const Store& store_;
  AuthOptions options_;
};

// Admins, or the device itself.
Result<void> MayActOn(const Caller& caller, std::string_view device, std::string_view action);
Result<void> AdminOnly(const Caller& caller, std::string_view action);

// Token buckets per caller for writes: `rate` per second, up to `burst` at once. rate 0 = off.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // what: the word for the counted calls in the refusal ("changes", "reads").
  RateLimiter(double rate, double burst, std::function<Clock::time_point()> now = Clock::now,
              std::string what = "changes")
      : rate_(rate), burst_(burst), now_(std::move(now)), what_(std::move(what)) {}
  // RESOURCE_EXHAUSTED with when to retry, once the caller's bucket is empty.
  Result<void> Allow(const std::string& key);
  // Whether the bucket is empty now (nothing taken).
  bool Exhausted(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  double rate_;
  double burst_;
  std::function<Clock::time_point()> now_;
  std::string what_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace natpilot
