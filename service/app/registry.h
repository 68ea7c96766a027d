// The device registry's write side: validates a caller's request against the policy, applies the
// defaults, stores the intent in one transaction and wakes the reconciler. Knows nothing of gRPC.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/types.h"
#include "store/store.h"

namespace natpilot {

// A register or update request; unset fields take the default (register) or keep (update).
struct DeviceInput {
  std::string name;
  std::optional<DeviceKind> kind;
  std::optional<std::string> address;
  std::optional<PortRange> sip;
  std::optional<std::vector<Transport>> sip_transports;
  std::optional<PortRange> rtp;
  std::optional<std::string> description;
  bool forget_identity = false;  // update: forget the MAC, lift a suspension
  bool by_admin = false;         // update: an admin's maps what an admin released again
};

// A registered device and its API token, which is shown this once.
struct Registered {
  Device device;
  std::string token;
};

class Registry {
 public:
  using NowFn = std::function<TimePoint()>;
  // The host's LAN subnets, asked when policy.device_networks is empty; unset = no address check.
  using NetworksFn = std::function<std::vector<Subnet>()>;
  Registry(Store& store, Policy policy, PortPlan defaults, NowFn now,
           std::function<void()> on_change, NetworksFn host_networks = {});

  Result<Registered> Register(const DeviceInput& input, const std::string& caller);
  Result<Device> Update(const DeviceInput& input, const std::string& caller);
  Result<void> Remove(const std::string& name, const std::string& caller);
  // device empty: every device.
  // by_admin: only an admin's update of the device maps them again (Store::ReleaseMappings).
  Result<uint32_t> Release(const std::string& device, const std::string& caller, bool by_admin);
  // A new token for the device; the old one stops working.
  Result<std::string> ResetToken(const std::string& name, const std::string& caller);

 private:
  Result<Device> Build(const DeviceInput& input, Device base) const;
  Store& store_;
  Policy policy_;
  PortPlan defaults_;
  NowFn now_;
  std::function<void()> on_change_;
  NetworksFn host_networks_;
  std::mutex register_mu_;  // max_devices: count and insert as one step
};

}  // namespace natpilot
