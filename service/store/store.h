// Where natpilotd keeps its state: devices (intent), mappings with their leases, pending releases
// of gateway entries, and events. Every method is one transaction; a failed call changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot {

class Store {
 public:
  virtual ~Store() = default;

  // Made once at the first start and kept: tags this installation's gateway entries.
  virtual std::string InstanceId() const = 0;
  // Grows with every change of the device registry (for generated files).
  virtual uint64_t RegistryVersion() const = 0;

  // Adds the device and the mappings of its plan. Fails with kAlreadyExists on a duplicate name
  // and kConflict when another device wants one of the same external ports.
  virtual Result<Device> AddDevice(Device device, Event event) = 0;
  // Replaces kind, address, description and plan. Mappings that stay keep their lease when the
  // address is the same; dropped mappings that hold a lease become releases. A new address clears
  // the MAC and the suspension. Mappings an admin released are wanted again only with kRearm (an
  // admin's update): with kKeep (a device token, the reconciler) they stay released, and so do the
  // mappings a new plan adds, so no one but an admin undoes an admin's release (nor does a device
  // that comes back from a suspension). A release by the device's own token is undone by any
  // update.
  enum class Released { kKeep, kRearm };
  virtual Result<Device> UpdateDevice(Device device, Event event, Released released) = 0;
  // Removes the device; its leased mappings become releases.
  virtual Result<void> RemoveDevice(std::string_view name, Event event) = 0;
  virtual Result<Device> GetDevice(std::string_view name) const = 0;
  virtual std::vector<Device> ListDevices() const = 0;
  // The device whose token hashes to this (kNotFound otherwise).
  virtual Result<Device> FindDeviceByTokenHash(std::string_view token_hash) const = 0;
  virtual Result<void> SetDeviceToken(std::string_view name, std::string token_hash,
                                      Event event) = 0;
  // Records the device's MAC and suspension. Suspending (reason set where none was) releases its
  // mappings and queues releases of their leases; resuming (reason cleared) makes them wanted
  // again.
  virtual Result<Device> SetDeviceIdentity(std::string_view name, std::string mac,
                                           std::string suspended, std::vector<Event> events) = 0;

  // All mappings, or one device's (kNotFound for an unknown device).
  virtual Result<std::vector<Mapping>> ListMappings(std::string_view device = {}) const = 0;
  // Writes state, lease and retry fields of the given mappings (by id) and appends the events.
  // A mapping no longer wanted as given (its row is gone or belongs to another device, the device
  // moved to another address, its ports changed, or it was released) is not written; a lease it
  // carries is queued for release. Returns how many were no longer wanted.
  virtual Result<uint32_t> SaveMappings(const std::vector<Mapping>& mappings,
                                        std::vector<Event> events) = 0;
  // Marks mappings released (all, or one device's) and queues releases for those with a lease.
  // by_admin: only an admin's update maps them again; otherwise (the device's own token) any
  // update of the device does.
  virtual Result<uint32_t> ReleaseMappings(std::string_view device, Event event, bool by_admin) = 0;

  virtual std::vector<Release> ListReleases() const = 0;
  // Queues deletions of gateway entries found at start-up that nothing wants.
  virtual Result<void> AddReleases(const std::vector<Release>& releases,
                                   std::vector<Event> events) = 0;
  // done: the gateway no longer has the entry; otherwise its failure count grows.
  virtual Result<void> FinishRelease(const Release& release, bool done,
                                     std::vector<Event> events) = 0;

  virtual Result<void> AppendEvents(std::vector<Event> events) = 0;
  // Newest last; only events with id > after_id; at most limit of the newest.
  virtual std::vector<Event> ListEvents(int64_t after_id, uint32_t limit) const = 0;
  // The id of the device's current registration event: events of this name before it belong to
  // an earlier device that had the name. 0 when there is none (kept events all came after).
  virtual int64_t FirstEventOf(const Device& device) const = 0;

  // Called after each commit with the events it added (ids assigned). Set once, before use.
  using EventListener = std::function<void(const std::vector<Event>&)>;
  virtual void SetEventListener(EventListener listener) = 0;
};

}  // namespace natpilot
