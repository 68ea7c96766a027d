#include "app/caller.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>

namespace natpilot {

std::string TokenKey(const Caller& caller) {
  if (!caller.admin()) return "device " + caller.device;
  return caller.peer_ip.empty() ? "the admin (unix socket)" : "the admin token";
}

namespace {

bool SameHash(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<Caller> Authenticator::Authenticate(const Credentials& cred) const {
  Caller caller;
  if (cred.unix_socket) {
    caller.label = "admin via unix socket";
    return caller;
  }
  caller.peer_ip = cred.peer_ip;
  if (!cred.authorization) {
    return Fail(Errc::kUnauthenticated,
                "no token: over TCP every call needs " + std::string(cred.carrier) +
                    " with the admin token or the device's own token (natpilot --token); the unix "
                    "socket needs none");
  }
  const std::string_view value = *cred.authorization;
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer || value.size() > 512) {
    return Fail(Errc::kUnauthenticated, "the token must come as " + std::string(cred.carrier));
  }
  const std::string hash = HashToken(value.substr(kBearer.size()));
  if (!options_.admin_token_hash.empty() && SameHash(hash, options_.admin_token_hash)) {
    caller.label = "admin token" + std::string(cred.via) + " from " + caller.peer_ip;
    return caller;
  }
  auto device = store_.FindDeviceByTokenHash(hash);
  if (!device) {
    return Fail(Errc::kUnauthenticated,
                "the token is not valid: it is neither the admin token nor a device's token "
                "(a device's token changes when an admin resets it)");
  }
  if (options_.device_calls_from_own_address && device->address != caller.peer_ip) {
    return Fail(
        Errc::kPermissionDenied,
        "device '" + device->name + "' token used from " + caller.peer_ip +
            "; api.device_calls_from_own_address requires calls from the device's address " +
            device->address);
  }
  caller.role = Caller::Role::kDevice;
  caller.device = device->name;
  caller.label = "device " + device->name + " from " + caller.peer_ip;
  return caller;
}

Result<void> MayActOn(const Caller& caller, std::string_view device, std::string_view action) {
  if (caller.admin() || caller.device == device) return {};
  return Fail(Errc::kPermissionDenied, std::string(action) + ": the token of device '" +
                                           caller.device + "' reaches only that device, not '" +
                                           std::string(device) + "'");
}

Result<void> AdminOnly(const Caller& caller, std::string_view action) {
  if (caller.admin()) return {};
  return Fail(Errc::kPermissionDenied, std::string(action) +
                                           " needs the admin (unix socket or "
                                           "admin token); the token of device '" +
                                           caller.device + "' reaches only its own device");
}

bool RateLimiter::Exhausted(const std::string& key) {
  if (rate_ <= 0) return false;
  const auto now = now_();
  std::lock_guard lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return false;
  const double elapsed = std::chrono::duration<double>(now - it->second.at).count();
  return std::min(burst_, it->second.tokens + elapsed * rate_) < 1.0;
}

Result<void> RateLimiter::Allow(const std::string& key) {
  if (rate_ <= 0) return {};
  const auto now = now_();
  std::lock_guard lock(mu_);
  if (buckets_.size() > 10000) buckets_.clear();  // bounded: forget idle callers wholesale
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.at = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  const auto wait_ms = static_cast<long>(std::ceil((1.0 - b.tokens) / rate_ * 1000.0));
  return Fail(Errc::kResourceExhausted, "too many " + what_ + " from " + key + ": at most " +
                                            std::to_string(static_cast<int>(rate_)) +
                                            " per second (bursts of " +
                                            std::to_string(static_cast<int>(burst_)) +
                                            "); retry in " + std::to_string(wait_ms) + " ms");
}

}  // namespace natpilot
