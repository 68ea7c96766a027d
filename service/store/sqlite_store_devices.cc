// The SQLite store: the device registry (one transaction per change, port conflicts checked).
#include "core/validate.h"
#include "store/sqlite_store.h"
#include "store/sqlite_store_internal.h"

namespace natpilot {

using namespace sqlite_store;

Result<void> SqliteStore::CheckPortConflicts(const Device& device) const {
  struct Want {
    Transport transport;
    PortRange range;
  };
  std::vector<Want> wants;
  if (device.plan.sip_udp) wants.push_back({Transport::kUdp, device.plan.sip});
  if (device.plan.sip_tcp) wants.push_back({Transport::kTcp, device.plan.sip});
  wants.push_back({Transport::kUdp, device.plan.rtp});
  sqlite::Stmt s(*db_,
                 "SELECT d.name, MIN(m.external_port), MAX(m.external_port) FROM mappings m "
                 "JOIN devices d ON d.id = m.device_id WHERE m.transport = ? AND "
                 "m.external_port BETWEEN ? AND ? AND d.name != ? GROUP BY d.name LIMIT 1");
  for (const Want& w : wants) {
    s.Reset();
    s.Bind(1, ToString(w.transport))
        .Bind(2, w.range.first)
        .Bind(3, w.range.last)
        .Bind(4, device.name);
    if (s.Step()) {
      const PortRange held{static_cast<uint16_t>(s.Int(1)), static_cast<uint16_t>(s.Int(2))};
      return tl::unexpected(Error{
          make_error_code(Errc::kConflict),
          "external ports " + ToString(w.range) + "/" + std::string(ToString(w.transport)) +
              " overlap another device's; mappings are port-preserving, so each device needs its "
              "own SIP and RTP ports",
          "device '" + s.Text(0) + "' holds " + ToString(held)});
    }
  }
  return {};
}

void SqliteStore::InsertMappings(const Device& device) {
  sqlite::Stmt ins(*db_,
                   "INSERT INTO mappings(device_id, purpose, transport, internal_port, "
                   "external_port, state) VALUES (?, ?, ?, ?, ?, 'pending') "
                   "ON CONFLICT(device_id, transport, internal_port) DO NOTHING");
  for (const Mapping& m : ExpandPlan(device)) {
    ins.Reset();
    ins.Bind(1, device.id).Bind(2, ToString(m.purpose)).Bind(3, ToString(m.transport));
    ins.Bind(4, m.internal_port).Bind(5, m.external_port);
    ins.Step();
  }
}

std::vector<Device> SqliteStore::QueryDevices(std::string_view name) const {
  std::string sql = kDeviceColumns;
  sql += name.empty() ? " ORDER BY d.name" : " WHERE d.name = ?";
  sqlite::Stmt s(*db_, sql);
  if (!name.empty()) s.Bind(1, name);
  std::vector<Device> out;
  while (s.Step()) {
    Device d;
    d.id = s.Int(0);
    d.name = s.Text(1);
    d.kind = DeviceKindFromString(s.Text(2)).value_or(DeviceKind::kOther);
    d.address = s.Text(3);
    d.plan.sip = {static_cast<uint16_t>(s.Int(4)), static_cast<uint16_t>(s.Int(5))};
    d.plan.sip_udp = s.Int(6) != 0;
    d.plan.sip_tcp = s.Int(7) != 0;
    d.plan.rtp = {static_cast<uint16_t>(s.Int(8)), static_cast<uint16_t>(s.Int(9))};
    d.created_at = FromUnix(s.Int(10));
    d.updated_at = FromUnix(s.Int(11));
    d.mappings_total = static_cast<uint32_t>(s.Int(12));
    d.mappings_active = static_cast<uint32_t>(s.Int(13));
    d.description = s.Text(14);
    d.mac = s.Text(15);
    d.suspended = s.Text(16);
    d.token_hash = s.Text(17);
    out.push_back(std::move(d));
  }
  return out;
}

Result<Device> SqliteStore::AddDevice(Device device, Event event) {
  std::vector<Event> events{std::move(event)};
  auto result = Guarded([&]() -> Result<Device> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    if (!QueryDevices(device.name).empty()) {
      return Fail(Errc::kAlreadyExists,
                  "device '" + device.name + "' already exists; choose another name or update it");
    }
    if (auto r = CheckPortConflicts(device); !r) return tl::unexpected(r.error());
    sqlite::Stmt ins(*db_,
                     "INSERT INTO devices(name, kind, address, sip_first, sip_last, sip_udp, "
                     "sip_tcp, rtp_first, rtp_last, created_at, updated_at, description, "
                     "token_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    const auto& p = device.plan;
    ins.Bind(1, device.name).Bind(2, ToString(device.kind)).Bind(3, device.address);
    ins.Bind(4, p.sip.first).Bind(5, p.sip.last).Bind(6, p.sip_udp).Bind(7, p.sip_tcp);
    ins.Bind(8, p.rtp.first).Bind(9, p.rtp.last);
    ins.Bind(10, ToUnix(device.created_at)).Bind(11, ToUnix(device.updated_at));
    ins.Bind(12, device.description).Bind(13, device.token_hash);
    ins.Step();
    device.id = db_->LastInsertId();
    InsertMappings(device);
    BumpRegistryVersion();
    InsertEvents(events);
    tx.Commit();
    return QueryDevices(device.name).front();
  });
  if (result) Publish(events);
  return result;
}

Result<Device> SqliteStore::UpdateDevice(Device device, Event event, Released released) {
  std::vector<Event> events{std::move(event)};
  auto result = Guarded([&]() -> Result<Device> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    auto found = QueryDevices(device.name);
    if (found.empty()) {
      return Fail(Errc::kNotFound, "no device named '" + device.name + "'");
    }
    const Device old = found.front();
    device.id = old.id;
    if (auto r = CheckPortConflicts(device); !r) return tl::unexpected(r.error());
    bool admin_released = false;
    {
      sqlite::Stmt any(
          *db_,
          "SELECT 1 FROM mappings WHERE device_id = ? AND released = 1 AND detail = ? LIMIT 1");
      any.Bind(1, old.id).Bind(2, kAdminReleasedDetail);
      admin_released = any.Step();
    }
    // Mappings the new plan drops, or all of them when the address moves, are released.
    sqlite::Stmt cur(*db_, std::string(kMappingColumns) + " WHERE m.device_id = ?");
    cur.Bind(1, old.id);
    std::vector<Mapping> drop;
    while (cur.Step()) {
      Mapping m = ReadMapping(cur);
      const bool keep = device.address == old.address &&
                        PlanPurpose(device.plan, m.transport, m.internal_port) == m.purpose;
      if (!keep) drop.push_back(std::move(m));
    }
    sqlite::Stmt del(*db_, "DELETE FROM mappings WHERE id = ?");
    for (const Mapping& m : drop) {
      if (!m.released) QueueRelease(m, device.name);
      del.Reset();
      del.Bind(1, m.id).Step();
    }
    sqlite::Stmt upd(*db_,
                     "UPDATE devices SET kind=?, address=?, sip_first=?, sip_last=?, sip_udp=?, "
                     "sip_tcp=?, rtp_first=?, rtp_last=?, updated_at=?, description=?, mac=?, "
                     "suspended=? WHERE id=?");
    const auto& p = device.plan;
    // A new address is a new host: its MAC is learnt again and an old suspension no longer holds.
    const bool moved = device.address != old.address;
    const std::string suspended = moved ? "" : old.suspended;
    upd.Bind(1, ToString(device.kind)).Bind(2, device.address).Bind(3, p.sip.first);
    upd.Bind(4, p.sip.last).Bind(5, p.sip_udp).Bind(6, p.sip_tcp).Bind(7, p.rtp.first);
    upd.Bind(8, p.rtp.last).Bind(9, ToUnix(device.updated_at)).Bind(10, device.description);
    upd.Bind(11, moved ? "" : old.mac).Bind(12, suspended).Bind(13, old.id);
    upd.Step();
    InsertMappings(device);
    if (!suspended.empty()) {
      ReleaseWhere(" AND d.name = ?", old.name, SuspendedDetail(suspended));
    } else if (released == Released::kRearm) {
      Unrelease(old.id, Rearm::kAll);  // an admin's update (and a suspension lifted by a move)
    } else {
      Unrelease(old.id, Rearm::kNotByAdmin);
      // What the new plan adds stays released as the admin left the rest.
      if (admin_released) ReleaseWhere(" AND d.name = ?", old.name, kAdminReleasedDetail);
    }
    BumpRegistryVersion();
    InsertEvents(events);
    tx.Commit();
    return QueryDevices(device.name).front();
  });
  if (result) Publish(events);
  return result;
}

Result<void> SqliteStore::RemoveDevice(std::string_view name, Event event) {
  std::vector<Event> events{std::move(event)};
  auto result = Guarded([&]() -> Result<void> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    auto found = QueryDevices(name);
    if (found.empty()) return Fail(Errc::kNotFound, "no device named '" + std::string(name) + "'");
    sqlite::Stmt cur(*db_,
                     std::string(kMappingColumns) + " WHERE m.device_id = ? AND m.released = 0");
    cur.Bind(1, found.front().id);
    // Their events name "NAME (removed)": a device registered under the name later is another one,
    // and its token does not see them.
    const std::string gone = std::string(name) + " (removed)";
    while (cur.Step()) QueueRelease(ReadMapping(cur), gone);
    sqlite::Stmt del(*db_, "DELETE FROM devices WHERE id = ?");
    del.Bind(1, found.front().id).Step();
    BumpRegistryVersion();
    InsertEvents(events);
    tx.Commit();
    return {};
  });
  if (result) Publish(events);
  return result;
}

Result<Device> SqliteStore::GetDevice(std::string_view name) const {
  // "" means every device to QueryDevices; here it names none.
  if (name.empty()) return Fail(Errc::kInvalidArgument, "a device name is required");
  return Guarded([&]() -> Result<Device> {
    std::lock_guard lock(mu_);
    auto found = QueryDevices(name);
    if (found.empty()) return Fail(Errc::kNotFound, "no device named '" + std::string(name) + "'");
    return found.front();
  });
}

void SqliteStore::Unrelease(int64_t device_id, Rearm which) {
  const char* only = which == Rearm::kAll         ? ""
                     : which == Rearm::kSuspended ? " AND substr(detail, 1, length(?2)) = ?2"
                                                  : " AND detail != ?2";
  sqlite::Stmt s(
      *db_, std::string("UPDATE mappings SET released = 0, state = 'pending', next_attempt_at = 0, "
                        "detail = '' WHERE device_id = ?1 AND released = 1") +
                only);
  s.Bind(1, device_id);
  if (which == Rearm::kSuspended) s.Bind(2, kSuspendedDetailPrefix);
  if (which == Rearm::kNotByAdmin) s.Bind(2, kAdminReleasedDetail);
  s.Step();
}

Result<Device> SqliteStore::FindDeviceByTokenHash(std::string_view token_hash) const {
  return Guarded([&]() -> Result<Device> {
    std::lock_guard lock(mu_);
    if (token_hash.empty()) return Fail(Errc::kNotFound, "no such token");
    sqlite::Stmt s(*db_, "SELECT name FROM devices WHERE token_hash = ?");
    s.Bind(1, token_hash);
    if (!s.Step()) return Fail(Errc::kNotFound, "no such token");
    return QueryDevices(s.Text(0)).front();
  });
}

Result<void> SqliteStore::SetDeviceToken(std::string_view name, std::string token_hash,
                                         Event event) {
  std::vector<Event> events{std::move(event)};
  auto result = Guarded([&]() -> Result<void> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    sqlite::Stmt upd(*db_, "UPDATE devices SET token_hash = ? WHERE name = ?");
    upd.Bind(1, token_hash).Bind(2, name).Step();
    if (db_->Changes() == 0)
      return Fail(Errc::kNotFound, "no device named '" + std::string(name) + "'");
    InsertEvents(events);
    tx.Commit();
    return {};
  });
  if (result) Publish(events);
  return result;
}

Result<Device> SqliteStore::SetDeviceIdentity(std::string_view name, std::string mac,
                                              std::string suspended, std::vector<Event> events) {
  auto result = Guarded([&]() -> Result<Device> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    auto found = QueryDevices(name);
    if (found.empty()) return Fail(Errc::kNotFound, "no device named '" + std::string(name) + "'");
    const Device& old = found.front();
    sqlite::Stmt upd(*db_, "UPDATE devices SET mac = ?, suspended = ? WHERE id = ?");
    upd.Bind(1, mac).Bind(2, suspended).Bind(3, old.id).Step();
    if (!suspended.empty() && old.suspended.empty()) {
      ReleaseWhere(" AND d.name = ?", old.name, SuspendedDetail(suspended));
      BumpRegistryVersion();
    } else if (suspended.empty() && !old.suspended.empty()) {
      Unrelease(old.id, Rearm::kSuspended);  // an admin's release outlasts the suspension
      BumpRegistryVersion();
    }
    InsertEvents(events);
    tx.Commit();
    return QueryDevices(name).front();
  });
  if (result) Publish(events);
  return result;
}

std::vector<Device> SqliteStore::ListDevices() const {
  std::lock_guard lock(mu_);
  return QueryDevices({});
}

}  // namespace natpilot
