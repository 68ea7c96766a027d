// Internal to the SQLite store's source files.
#pragma once

#include <chrono>

#include "core/error.h"
#include "core/types.h"
#include "store/sqlite_db.h"

namespace natpilot::sqlite_store {

inline int64_t ToUnix(TimePoint t) {
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}
inline TimePoint FromUnix(int64_t s) { return TimePoint(Seconds(s)); }

inline constexpr const char* kDeviceColumns =
    "SELECT d.id, d.name, d.kind, d.address, d.sip_first, d.sip_last, d.sip_udp, d.sip_tcp, "
    "d.rtp_first, d.rtp_last, d.created_at, d.updated_at, "
    "(SELECT COUNT(*) FROM mappings m WHERE m.device_id = d.id), "
    // Active and not past its lease's end (see LapseExpired in core/types.h).
    "(SELECT COUNT(*) FROM mappings m WHERE m.device_id = d.id AND m.state = 'active' AND "
    "(m.expires_at = 0 OR m.expires_at > CAST(strftime('%s', 'now') AS INTEGER))), "
    "d.description, d.mac, d.suspended, d.token_hash "
    "FROM devices d";

inline constexpr const char* kMappingColumns =
    "SELECT m.id, m.device_id, d.name, d.address, m.purpose, m.transport, m.internal_port, "
    "m.external_port, m.state, m.released, m.protocol, m.external_address, m.granted_at, "
    "m.expires_at, m.renew_at, m.failures, m.next_attempt_at, m.detail, m.nonce "
    "FROM mappings m JOIN devices d ON d.id = m.device_id";

Mapping ReadMapping(const sqlite::Stmt& s);

// A released mapping's detail says who released it; the store reads it back to know which
// releases an update or a resumption undoes (store.h).
inline constexpr const char* kAdminReleasedDetail =
    "released by an admin; an admin's update of the device maps it again";
inline constexpr const char* kSelfReleasedDetail =
    "released with the device's own token; an update of the device maps it again";
inline constexpr const char* kSuspendedDetailPrefix = "suspended: ";

inline std::string SuspendedDetail(const std::string& reason) {
  return kSuspendedDetailPrefix + reason;
}

// Runs f, turning an SQLite failure into an Error: the transaction inside f has rolled back.
template <typename F>
auto Guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const sqlite::SqliteError& e) {
    return Fail(Errc::kInternal, "database error: " + e.message);
  }
}

}  // namespace natpilot::sqlite_store
