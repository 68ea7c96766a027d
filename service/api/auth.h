// Who is calling: decided once per call from the transport and the bearer token, then checked
// against what the call touches. Also the per-caller write rate limit.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "api/tokens.h"
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

// "ipv4:127.0.0.1:5555" -> "127.0.0.1"; "ipv6:[::1]:5555" -> "::1"; "unix:..." -> "".
std::string PeerIp(const std::string& peer);
// Whose limits a call counts against: one per token, whatever the address it comes from.
std::string TokenKey(const Caller& caller);

struct AuthOptions {
  std::string admin_token_hash;  // HashToken of the admin token; empty = no admin token over TCP
  // A device token is accepted only from the device's registered address.
  bool device_calls_from_own_address = false;
};

class Authenticator {
 public:
  Authenticator(const Store& store, AuthOptions options) : store_(store), options_(std::move(options)) {}
  // The unix socket is admin. Over TCP: UNAUTHENTICATED without a valid bearer token;
  // PERMISSION_DENIED for a device token used from elsewhere when that is required.
  Result<Caller> Authenticate(const grpc::ServerContextBase& ctx) const;

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
