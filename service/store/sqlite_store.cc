// The SQLite store: schema and migrations, mappings, releases and events.
#include "store/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>

#include "core/event_kinds.h"
#include "core/text.h"
#include "core/validate.h"
#include "store/sqlite_store_internal.h"

namespace natpilot {
namespace {

// Bytes of an event message or a mapping detail kept (cut at a code point boundary).
constexpr size_t kMaxEventText = 4096;

// The last guard: whatever text is stored (a gateway's, a hook's) is valid UTF-8 without control
// characters, as gRPC, JSON and terminals need it; safe text (nearly all) is kept as it is.
std::string StoredText(const std::string& text) {
  if (text.size() <= kMaxEventText && UnsafeTextReason(text).empty()) return text;
  return SafeText(text, kMaxEventText);
}

// Numbered migrations; index + 1 is the schema version they lead to. Never edit a shipped one.
constexpr const char* kMigrations[] = {
    // 1: the first schema.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  address TEXT NOT NULL,
  sip_first INTEGER NOT NULL, sip_last INTEGER NOT NULL,
  sip_udp INTEGER NOT NULL, sip_tcp INTEGER NOT NULL,
  rtp_first INTEGER NOT NULL, rtp_last INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE mappings(
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  purpose TEXT NOT NULL,
  transport TEXT NOT NULL CHECK (transport IN ('udp', 'tcp')),
  internal_port INTEGER NOT NULL CHECK (internal_port BETWEEN 1 AND 65535),
  external_port INTEGER NOT NULL CHECK (external_port BETWEEN 1 AND 65535),
  state TEXT NOT NULL,
  released INTEGER NOT NULL DEFAULT 0,
  protocol TEXT NOT NULL DEFAULT 'none',
  external_address TEXT NOT NULL DEFAULT '',
  granted_at INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL DEFAULT 0,
  renew_at INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  detail TEXT NOT NULL DEFAULT '',
  UNIQUE (transport, external_port),
  UNIQUE (device_id, transport, internal_port));
CREATE TABLE releases(
  id INTEGER PRIMARY KEY,
  protocol TEXT NOT NULL,
  transport TEXT NOT NULL,
  external_port INTEGER NOT NULL,
  internal_address TEXT NOT NULL,
  internal_port INTEGER NOT NULL,
  device TEXT NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  UNIQUE (protocol, transport, external_port, internal_address));
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  device TEXT NOT NULL,
  caller TEXT NOT NULL,
  message TEXT NOT NULL);
CREATE INDEX events_at ON events(at);
)sql",
    // 2: PCP nonces, kept per mapping and per pending release.
    R"sql(
ALTER TABLE mappings ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
)sql",
    // 3: device description, identity (MAC, suspension) and API token hash.
    R"sql(
ALTER TABLE devices ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN suspended TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN token_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX devices_token ON devices(token_hash) WHERE token_hash != '';
)sql",
};

}  // namespace

using namespace sqlite_store;

Mapping sqlite_store::ReadMapping(const sqlite::Stmt& s) {
  Mapping m;
  m.id = s.Int(0);
  m.device_id = s.Int(1);
  m.device = s.Text(2);
  m.internal_address = s.Text(3);
  m.purpose = s.Text(4) == "rtp" ? Purpose::kRtp : Purpose::kSip;
  m.transport = TransportFromString(s.Text(5)).value_or(Transport::kUdp);
  m.internal_port = static_cast<uint16_t>(s.Int(6));
  m.external_port = static_cast<uint16_t>(s.Int(7));
  m.state = MappingStateFromString(s.Text(8)).value_or(MappingState::kPending);
  m.released = s.Int(9) != 0;
  m.protocol = GatewayProtocolFromString(s.Text(10)).value_or(GatewayProtocol::kNone);
  m.external_address = s.Text(11);
  m.granted_at = FromUnix(s.Int(12));
  m.expires_at = FromUnix(s.Int(13));
  m.renew_at = FromUnix(s.Int(14));
  m.failures = static_cast<uint32_t>(s.Int(15));
  m.next_attempt_at = FromUnix(s.Int(16));
  m.detail = s.Text(17);
  m.nonce = s.Text(18);
  return m;
}

SqliteStore::SqliteStore(StoreOptions options) : options_(std::move(options)) {
  const bool file = options_.path != ":memory:" && !options_.path.empty();
  if (file) {
    // Created private: the file holds device token hashes and the LAN's layout. SQLite gives its
    // -wal and -shm files the same mode.
    const int fd = ::open(options_.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw std::runtime_error("database '" + options_.path +
                               "': cannot open or create it: " + std::strerror(errno));
    }
    ::close(fd);
  }
  try {
    db_ = std::make_unique<sqlite::Db>(options_.path);
    if (file) CheckIntegrity();
    db_->Exec("PRAGMA foreign_keys = ON");
    if (options_.path != ":memory:") db_->Exec("PRAGMA journal_mode = WAL");
    db_->Exec("PRAGMA synchronous = FULL");
    Migrate();
    instance_id_ = LoadOrMakeInstanceId();
  } catch (const sqlite::SqliteError& e) {
    throw std::runtime_error("database '" + options_.path + "': " + e.message);
  }
}

void SqliteStore::CheckIntegrity() {
  std::string problems;
  try {
    sqlite::Stmt s(*db_, "PRAGMA integrity_check(5)");
    while (s.Step()) {
      if (s.Text(0) != "ok") problems += (problems.empty() ? "" : "; ") + s.Text(0);
    }
  } catch (const sqlite::SqliteError& e) {
    problems = e.message;
  }
  if (!problems.empty()) {
    throw std::runtime_error("database '" + options_.path + "' is damaged (" + problems +
                             "); natpilotd will not overwrite it: restore a backup, or move the "
                             "file away to start with an empty registry");
  }
}

int SqliteStore::SchemaVersion() const {
  std::lock_guard lock(mu_);
  sqlite::Stmt s(*db_, "PRAGMA user_version");
  s.Step();
  return static_cast<int>(s.Int(0));
}

void SqliteStore::Migrate() {
  int version = 0;
  {
    sqlite::Stmt s(*db_, "PRAGMA user_version");
    s.Step();
    version = static_cast<int>(s.Int(0));
  }
  constexpr int kLatest = static_cast<int>(std::size(kMigrations));
  if (version > kLatest) {
    throw sqlite::SqliteError{0, "schema version " + std::to_string(version) +
                                     " is newer than this natpilotd knows (" +
                                     std::to_string(kLatest) + "); upgrade natpilotd"};
  }
  for (int v = version; v < kLatest; ++v) {
    sqlite::Transaction tx(*db_);
    db_->Exec(kMigrations[v]);
    db_->Exec("PRAGMA user_version = " + std::to_string(v + 1));
    tx.Commit();
  }
}

std::string SqliteStore::LoadOrMakeInstanceId() {
  sqlite::Transaction tx(*db_);
  sqlite::Stmt get(*db_, "SELECT value FROM meta WHERE key = 'instance_id'");
  if (get.Step()) return get.Text(0);
  std::random_device rd;
  std::string id;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) id += hex[rd() % 16];
  sqlite::Stmt put(*db_,
                   "INSERT INTO meta(key, value) VALUES ('instance_id', ?), "
                   "('registry_version', '0')");
  put.Bind(1, id).Step();
  tx.Commit();
  return id;
}

uint64_t SqliteStore::RegistryVersion() const {
  std::lock_guard lock(mu_);
  sqlite::Stmt s(*db_, "SELECT value FROM meta WHERE key = 'registry_version'");
  return s.Step() ? std::stoull(s.Text(0)) : 0;
}

void SqliteStore::BumpRegistryVersion() {
  db_->Exec("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_version'");
}

bool SqliteStore::QueueRelease(const Mapping& m, std::string_view device) {
  // A lease is deleted with the protocol that granted it. A PCP request that got no answer may
  // still have made the mapping (the answer was lost): a nonce without a lease is deleted with PCP
  // too (deleting a mapping that does not exist succeeds, RFC 6887 15).
  GatewayProtocol protocol = m.protocol;
  if (protocol == GatewayProtocol::kNone && !m.nonce.empty()) protocol = GatewayProtocol::kPcp;
  if (protocol == GatewayProtocol::kNone) return false;
  sqlite::Stmt s(
      *db_,
      "INSERT INTO releases(protocol, transport, external_port, internal_address, "
      "internal_port, device, nonce) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
  s.Bind(1, ToString(protocol)).Bind(2, ToString(m.transport)).Bind(3, m.external_port);
  s.Bind(4, m.internal_address).Bind(5, m.internal_port).Bind(6, device).Bind(7, m.nonce);
  s.Step();
  return true;
}

void SqliteStore::InsertEvents(std::vector<Event>& events) {
  sqlite::Stmt ins(*db_,
                   "INSERT INTO events(at, kind, device, caller, message) VALUES (?,?,?,?,?)");
  for (Event& e : events) {
    e.message = StoredText(e.message);
    ins.Reset();
    ins.Bind(1, ToUnix(e.at))
        .Bind(2, e.kind)
        .Bind(3, e.device)
        .Bind(4, e.caller)
        .Bind(5, e.message);
    ins.Step();
    e.id = db_->LastInsertId();
  }
  if (events.empty()) return;
  // Retention: keep the newest event_retention_count events, none older than the age limit.
  sqlite::Stmt prune(*db_, "DELETE FROM events WHERE id <= ? OR at < ?");
  prune.Bind(1, events.back().id - static_cast<int64_t>(options_.event_retention_count));
  prune.Bind(2, ToUnix(events.back().at) - options_.event_retention_age.count());
  prune.Step();
}

void SqliteStore::Publish(const std::vector<Event>& events) {
  if (listener_ && !events.empty()) listener_(events);
}

Result<std::vector<Mapping>> SqliteStore::ListMappings(std::string_view device) const {
  return Guarded([&]() -> Result<std::vector<Mapping>> {
    std::lock_guard lock(mu_);
    // Devices first (few), then a plain scan of the mappings: no join lookup per mapping.
    std::map<int64_t, std::pair<std::string, std::string>> devices;  // id -> name, address
    sqlite::Stmt d(*db_, device.empty() ? "SELECT id, name, address FROM devices"
                                        : "SELECT id, name, address FROM devices WHERE name = ?");
    if (!device.empty()) d.Bind(1, device);
    while (d.Step()) devices[d.Int(0)] = {d.Text(1), d.Text(2)};
    if (!device.empty() && devices.empty()) {
      return Fail(Errc::kNotFound, "no device named '" + std::string(device) + "'");
    }
    std::string sql =
        "SELECT m.id, m.device_id, NULL, NULL, m.purpose, m.transport, m.internal_port, "
        "m.external_port, m.state, m.released, m.protocol, m.external_address, m.granted_at, "
        "m.expires_at, m.renew_at, m.failures, m.next_attempt_at, m.detail, m.nonce FROM mappings "
        "m";
    if (!device.empty()) sql += " WHERE m.device_id = ?";
    sqlite::Stmt s(*db_, sql);
    if (!device.empty()) s.Bind(1, devices.begin()->first);
    std::vector<Mapping> out;
    while (s.Step()) {
      Mapping m = ReadMapping(s);
      auto it = devices.find(m.device_id);
      if (it == devices.end()) continue;
      m.device = it->second.first;
      m.internal_address = it->second.second;
      out.push_back(std::move(m));
    }
    // Listing order (device, SIP before RTP, port, TCP before UDP), sorted here: a table scan and a
    // sort in memory take less than half the time of SQLite's join and ORDER BY on 10,000 mappings.
    std::sort(out.begin(), out.end(), [](const Mapping& a, const Mapping& b) {
      const auto key = [](const Mapping& m) {
        return std::tie(m.device, m.purpose, m.internal_port);
      };
      if (key(a) != key(b)) return key(a) < key(b);
      return a.transport == Transport::kTcp && b.transport == Transport::kUdp;
    });
    return out;
  });
}

Result<uint32_t> SqliteStore::SaveMappings(const std::vector<Mapping>& mappings,
                                           std::vector<Event> events) {
  auto result = Guarded([&]() -> Result<uint32_t> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    sqlite::Stmt upd(*db_,
                     "UPDATE mappings SET state=?, protocol=?, external_address=?, granted_at=?, "
                     "expires_at=?, renew_at=?, failures=?, next_attempt_at=?, detail=?, nonce=? "
                     "WHERE id=?");
    uint32_t stale = 0;
    for (const Mapping& m : mappings) {
      if (!StillWanted(m)) {
        // The intent changed while the caller's pass was under way (device removed, moved, plan
        // narrowed, released by an admin or a suspension): the row is not written, and a lease
        // the pass holds for it is queued for deletion instead of kept or silently dropped.
        QueueRelease(m, m.device);
        ++stale;
        continue;
      }
      upd.Reset();
      upd.Bind(1, ToString(m.state)).Bind(2, ToString(m.protocol)).Bind(3, m.external_address);
      upd.Bind(4, ToUnix(m.granted_at)).Bind(5, ToUnix(m.expires_at)).Bind(6, ToUnix(m.renew_at));
      upd.Bind(7, m.failures).Bind(8, ToUnix(m.next_attempt_at)).Bind(9, StoredText(m.detail));
      upd.Bind(10, m.nonce).Bind(11, m.id);
      upd.Step();
    }
    InsertEvents(events);
    tx.Commit();
    return stale;
  });
  if (result) Publish(events);
  return result;
}

bool SqliteStore::StillWanted(const Mapping& m) {
  // By content, not only by id: ids of deleted rows are reused by the next insert.
  sqlite::Stmt s(*db_,
                 "SELECT m.released, m.device_id, d.address, m.transport, m.internal_port, "
                 "m.external_port FROM mappings m JOIN devices d ON d.id = m.device_id "
                 "WHERE m.id = ?");
  s.Bind(1, m.id);
  if (!s.Step()) return false;
  return s.Int(0) == 0 && s.Int(1) == m.device_id && s.Text(2) == m.internal_address &&
         s.Text(3) == ToString(m.transport) && s.Int(4) == m.internal_port &&
         s.Int(5) == m.external_port;
}

uint32_t SqliteStore::ReleaseWhere(const std::string& where, std::string_view bind,
                                   const std::string& detail) {
  sqlite::Stmt cur(*db_, std::string(kMappingColumns) + " WHERE m.released = 0" + where);
  if (!bind.empty()) cur.Bind(1, bind);
  std::vector<Mapping> hit;
  while (cur.Step()) hit.push_back(ReadMapping(cur));
  sqlite::Stmt upd(*db_,
                   "UPDATE mappings SET released = 1, state = 'unmapped', protocol = 'none', "
                   "external_address = '', granted_at = 0, expires_at = 0, renew_at = 0, "
                   "detail = ? WHERE id = ?");
  uint32_t leased = 0;
  for (const Mapping& m : hit) {
    QueueRelease(m, m.device);
    leased += m.protocol != GatewayProtocol::kNone;
    upd.Reset();
    upd.Bind(1, detail).Bind(2, m.id).Step();
  }
  return leased;
}

Result<uint32_t> SqliteStore::ReleaseMappings(std::string_view device, Event event, bool by_admin) {
  std::vector<Event> events{std::move(event)};
  auto result = Guarded([&]() -> Result<uint32_t> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    if (!device.empty() && QueryDevices(device).empty()) {
      return Fail(Errc::kNotFound, "no device named '" + std::string(device) + "'");
    }
    const uint32_t leased = ReleaseWhere(device.empty() ? "" : " AND d.name = ?", device,
                                         by_admin ? kAdminReleasedDetail : kSelfReleasedDetail);
    InsertEvents(events);
    tx.Commit();
    return leased;
  });
  if (result) Publish(events);
  return result;
}

std::vector<Release> SqliteStore::ListReleases() const {
  std::lock_guard lock(mu_);
  sqlite::Stmt s(*db_,
                 "SELECT id, protocol, transport, external_port, internal_address, internal_port, "
                 "device, failures, nonce FROM releases ORDER BY id");
  std::vector<Release> out;
  while (s.Step()) {
    Release r;
    r.id = s.Int(0);
    r.protocol = GatewayProtocolFromString(s.Text(1)).value_or(GatewayProtocol::kUpnpIgd);
    r.transport = TransportFromString(s.Text(2)).value_or(Transport::kUdp);
    r.external_port = static_cast<uint16_t>(s.Int(3));
    r.internal_address = s.Text(4);
    r.internal_port = static_cast<uint16_t>(s.Int(5));
    r.device = s.Text(6);
    r.failures = static_cast<uint32_t>(s.Int(7));
    r.nonce = s.Text(8);
    out.push_back(std::move(r));
  }
  return out;
}

Result<void> SqliteStore::AddReleases(const std::vector<Release>& releases,
                                      std::vector<Event> events) {
  auto result = Guarded([&]() -> Result<void> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    for (const Release& r : releases) {
      Mapping m;
      m.protocol = r.protocol;
      m.transport = r.transport;
      m.external_port = r.external_port;
      m.internal_address = r.internal_address;
      m.internal_port = r.internal_port;
      m.nonce = r.nonce;
      QueueRelease(m, r.device);
    }
    InsertEvents(events);
    tx.Commit();
    return {};
  });
  if (result) Publish(events);
  return result;
}

Result<void> SqliteStore::FinishRelease(const Release& release, bool done,
                                        std::vector<Event> events) {
  auto result = Guarded([&]() -> Result<void> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    sqlite::Stmt s(*db_, done ? "DELETE FROM releases WHERE id = ?"
                              : "UPDATE releases SET failures = failures + 1 WHERE id = ?");
    s.Bind(1, release.id).Step();
    InsertEvents(events);
    tx.Commit();
    return {};
  });
  if (result) Publish(events);
  return result;
}

Result<void> SqliteStore::AppendEvents(std::vector<Event> events) {
  auto result = Guarded([&]() -> Result<void> {
    std::lock_guard lock(mu_);
    sqlite::Transaction tx(*db_);
    InsertEvents(events);
    tx.Commit();
    return {};
  });
  if (result) Publish(events);
  return result;
}

std::vector<Event> SqliteStore::ListEvents(int64_t after_id, uint32_t limit) const {
  std::lock_guard lock(mu_);
  sqlite::Stmt s(*db_,
                 "SELECT id, at, kind, device, caller, message FROM (SELECT * FROM events "
                 "WHERE id > ? ORDER BY id DESC LIMIT ?) ORDER BY id");
  s.Bind(1, after_id).Bind(2, limit);
  std::vector<Event> out;
  while (s.Step()) {
    out.push_back(Event{s.Int(0), FromUnix(s.Int(1)), s.Text(2), s.Text(3), s.Text(4), s.Text(5)});
  }
  return out;
}

int64_t SqliteStore::FirstEventOf(const Device& device) const {
  std::lock_guard lock(mu_);
  // The registration is recorded at created_at: the index on `at` keeps this to a few rows.
  sqlite::Stmt s(*db_, "SELECT MAX(id) FROM events WHERE at >= ? AND device = ? AND kind = ?");
  s.Bind(1, ToUnix(device.created_at)).Bind(2, device.name).Bind(3, event::kDeviceRegistered);
  return s.Step() ? s.Int(0) : 0;
}

}  // namespace natpilot
