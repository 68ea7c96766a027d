#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/sqlite_db.h"
#include "store/store.h"

namespace natpilot {

struct StoreOptions {
  std::string path = "natpilot.db";  // ":memory:" for a private in-memory database
  uint32_t event_retention_count = 10000;
  Seconds event_retention_age{Seconds(30 * 24 * 3600)};
};

// SQLite in WAL mode with synchronous=FULL: each commit is on disk when it returns, so a power cut
// loses no acknowledged change (NORMAL could lose the last commits); writes are rare (API changes,
// one batch per renewal pass), so the fsync per commit costs nothing that matters.
class SqliteStore final : public Store {
 public:
  // Opens or creates the database and applies pending migrations. Throws std::runtime_error.
  explicit SqliteStore(StoreOptions options);

  std::string InstanceId() const override { return instance_id_; }
  uint64_t RegistryVersion() const override;
  Result<Device> AddDevice(Device device, Event event) override;
  Result<Device> UpdateDevice(Device device, Event event, Released released) override;
  Result<void> RemoveDevice(std::string_view name, Event event) override;
  Result<Device> GetDevice(std::string_view name) const override;
  std::vector<Device> ListDevices() const override;
  Result<Device> FindDeviceByTokenHash(std::string_view token_hash) const override;
  Result<void> SetDeviceToken(std::string_view name, std::string token_hash, Event event) override;
  Result<Device> SetDeviceIdentity(std::string_view name, std::string mac, std::string suspended,
                                   std::vector<Event> events) override;
  Result<std::vector<Mapping>> ListMappings(std::string_view device) const override;
  Result<uint32_t> SaveMappings(const std::vector<Mapping>& mappings,
                                std::vector<Event> events) override;
  Result<uint32_t> ReleaseMappings(std::string_view device, Event event, bool by_admin) override;
  std::vector<Release> ListReleases() const override;
  Result<void> AddReleases(const std::vector<Release>& releases,
                           std::vector<Event> events) override;
  Result<void> FinishRelease(const Release& release, bool done, std::vector<Event> events) override;
  Result<void> AppendEvents(std::vector<Event> events) override;
  std::vector<Event> ListEvents(int64_t after_id, uint32_t limit) const override;
  int64_t FirstEventOf(const Device& device) const override;
  void SetEventListener(EventListener listener) override { listener_ = std::move(listener); }

  // Current schema version (PRAGMA user_version).
  int SchemaVersion() const;

 private:
  void CheckIntegrity();
  void Migrate();
  std::string LoadOrMakeInstanceId();
  Result<void> CheckPortConflicts(const Device& device) const;
  std::vector<Device> QueryDevices(std::string_view name) const;
  void InsertMappings(const Device& device);
  // Queues the deletion of what the gateway may hold for m (its lease, or a PCP request that got
  // no answer); false when there is nothing.
  bool QueueRelease(const Mapping& m, std::string_view device);
  bool StillWanted(const Mapping& m);
  // Marks the matching unreleased mappings released, queueing releases of their leases.
  // Makes a device's released mappings wanted again (pending, asked for at once).
  // Which released mappings of a device become wanted again.
  enum class Rearm { kAll, kSuspended, kNotByAdmin };
  void Unrelease(int64_t device_id, Rearm which);
  uint32_t ReleaseWhere(const std::string& where, std::string_view bind, const std::string& detail);
  void InsertEvents(std::vector<Event>& events);
  void BumpRegistryVersion();
  void Publish(const std::vector<Event>& events);

  StoreOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<sqlite::Db> db_;
  std::string instance_id_;
  EventListener listener_;
};

}  // namespace natpilot
