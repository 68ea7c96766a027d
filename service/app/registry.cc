#include "app/registry.h"

#include "app/tokens.h"
#include "core/event_kinds.h"
#include "core/validate.h"

namespace natpilot {

Registry::Registry(Store& store, Policy policy, PortPlan defaults, NowFn now,
                   std::function<void()> on_change, NetworksFn host_networks)
    : store_(store),
      policy_(std::move(policy)),
      defaults_(defaults),
      now_(std::move(now)),
      on_change_(std::move(on_change)),
      host_networks_(std::move(host_networks)) {}

Result<Device> Registry::Build(const DeviceInput& in, Device d) const {
  if (auto r = ValidateDeviceName(in.name); !r) return tl::unexpected(r.error());
  d.name = in.name;
  if (in.kind) d.kind = *in.kind;
  if (in.address) {
    auto addr = ParseIpv4Unicast(*in.address, "device address");
    if (!addr) return tl::unexpected(addr.error());
    if (!policy_.device_networks.empty()) {
      if (auto r = CheckDeviceNetwork(*addr, policy_.device_networks, false); !r)
        return tl::unexpected(r.error());
    } else if (host_networks_) {
      if (auto r = CheckDeviceNetwork(*addr, host_networks_(), true); !r)
        return tl::unexpected(r.error());
    }
    d.address = *addr;
  }
  if (in.description) {
    if (auto r = ValidateDescription(*in.description); !r) return tl::unexpected(r.error());
    d.description = *in.description;
  }
  if (d.address.empty()) {
    return Fail(Errc::kInvalidArgument,
                "device address is required (the device's IPv4 LAN address)");
  }
  if (in.sip) d.plan.sip = *in.sip;
  if (in.rtp) d.plan.rtp = *in.rtp;
  if (in.sip_transports) {
    d.plan.sip_udp = d.plan.sip_tcp = false;
    for (Transport t : *in.sip_transports)
      (t == Transport::kUdp ? d.plan.sip_udp : d.plan.sip_tcp) = true;
  }
  if (auto r = ValidatePlan(d.plan, policy_); !r) return tl::unexpected(r.error());
  return d;
}

Result<Registered> Registry::Register(const DeviceInput& input, const std::string& caller) {
  Device base;
  base.kind = DeviceKind::kOther;
  base.plan = defaults_;
  auto device = Build(input, base);
  if (!device) return tl::unexpected(device.error());
  std::lock_guard lock(register_mu_);
  if (const size_t n = store_.ListDevices().size(); n >= policy_.max_devices) {
    return Fail(Errc::kPermissionDenied,
                "device '" + device->name + "' is refused by policy.max_devices: " +
                    std::to_string(n) + " devices are registered, at most " +
                    std::to_string(policy_.max_devices) + " are allowed");
  }
  Registered out;
  out.token = NewToken("npd_");
  device->token_hash = HashToken(out.token);
  device->created_at = device->updated_at = now_();
  const std::string msg =
      std::string(ToString(device->kind)) + " at " + device->address + ", SIP " +
      ToString(device->plan.sip) + (device->plan.sip_udp ? " udp" : "") +
      (device->plan.sip_tcp ? " tcp" : "") + ", RTP " + ToString(device->plan.rtp) + " udp";
  auto added = store_.AddDevice(
      *device, Event{0, device->created_at, event::kDeviceRegistered, device->name, caller, msg});
  if (!added) return tl::unexpected(added.error());
  if (on_change_) on_change_();
  out.device = std::move(*added);
  return out;
}

Result<std::string> Registry::ResetToken(const std::string& name, const std::string& caller) {
  if (auto r = ValidateDeviceName(name); !r) return tl::unexpected(r.error());
  std::string token = NewToken("npd_");
  auto done =
      store_.SetDeviceToken(name, HashToken(token),
                            Event{0, now_(), event::kDeviceTokenReset, name, caller,
                                  "a new API token was issued; the old one no longer works"});
  if (!done) return tl::unexpected(done.error());
  return token;
}

Result<Device> Registry::Update(const DeviceInput& input, const std::string& caller) {
  if (auto r = ValidateDeviceName(input.name); !r) return tl::unexpected(r.error());
  auto current = store_.GetDevice(input.name);
  if (!current) return current;
  auto device = Build(input, *current);
  if (!device) return device;
  device->updated_at = now_();
  const std::string msg = "now " + std::string(ToString(device->kind)) + " at " + device->address +
                          ", SIP " + ToString(device->plan.sip) + ", RTP " +
                          ToString(device->plan.rtp);
  auto updated = store_.UpdateDevice(
      *device, Event{0, device->updated_at, event::kDeviceUpdated, device->name, caller, msg},
      input.by_admin ? Store::Released::kRearm : Store::Released::kKeep);
  if (updated && input.forget_identity && (!updated->mac.empty() || !updated->suspended.empty())) {
    updated = store_.SetDeviceIdentity(
        device->name, "", "",
        {Event{0, device->updated_at, event::kDeviceIdentityForgotten, device->name, caller,
               "MAC " + (updated->mac.empty() ? std::string("(none)") : updated->mac) +
                   " forgotten" + (updated->suspended.empty() ? "" : " and the suspension lifted") +
                   "; the host answering at " + device->address + " is learnt as this device"}});
  }
  if (updated && on_change_) on_change_();
  return updated;
}

Result<void> Registry::Remove(const std::string& name, const std::string& caller) {
  if (auto r = ValidateDeviceName(name); !r) return r;
  auto removed = store_.RemoveDevice(name, Event{0, now_(), event::kDeviceRemoved, name, caller,
                                                 "removed; its gateway entries are being deleted"});
  if (removed && on_change_) on_change_();
  return removed;
}

Result<uint32_t> Registry::Release(const std::string& device, const std::string& caller,
                                   bool by_admin) {
  if (!device.empty()) {
    if (auto r = ValidateDeviceName(device); !r) return tl::unexpected(r.error());
  }
  auto released =
      store_.ReleaseMappings(device,
                             Event{0, now_(), event::kMappingReleaseRequested, device, caller,
                                   device.empty() ? "release of every device's mappings"
                                                  : "release of this device's mappings"},
                             by_admin);
  if (released && on_change_) on_change_();
  return released;
}

}  // namespace natpilot
