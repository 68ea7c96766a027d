// A scripted gateway for unit tests of the reconciler: an in-process mapping table with the
// behaviours a real router shows (answers, refusals, going silent, forgetting), so the reconciler's
// policy and timing can be checked at an injected clock. The real gateway is tested in tests/lab.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "portmap/port_mapper.h"

namespace natpilot::testing {

class FakeGateway final : public PortMapper {
 public:
  bool reachable = true;
  bool list_fails = false;  // a gateway that answers everything but GetGenericPortMappingEntry
  int lists = 0;
  std::optional<int> refuse_with;  // a UPnP error code for every Map
  std::string external_address = "198.51.100.7";
  std::string address;  // the gateway's LAN address, as a probe reports it
  int maps = 0, unmaps = 0, probes = 0;
  std::map<std::pair<Transport, uint16_t>, GatewayEntry> table;

  GatewayProtocol kind = GatewayProtocol::kUpnpIgd;
  std::chrono::milliseconds probe_delay{0};  // a slow protocol
  std::string local = "192.168.1.2";
  bool third_party = true;          // false: maps only to `local`, like NAT-PMP
  bool state_lost = false;          // the next TakeStateLoss() says the gateway forgot
  bool conflict_on_taken = false;   // 718 for a port another host holds
  std::set<uint16_t> refuse_unmap;  // external ports whose deletion is refused (606)
  std::function<void()> on_map;     // runs inside each Map (intent changing mid-pass)
  int heartbeats = 0;

  GatewayProtocol protocol() const override { return kind; }
  GatewayInfo Probe() override {
    std::this_thread::sleep_for(probe_delay);
    ++probes;
    GatewayInfo info;
    info.protocol = GatewayProtocol::kUpnpIgd;
    info.status = reachable ? GatewayInfo::Status::kReady : GatewayInfo::Status::kNotFound;
    info.external_address = reachable ? external_address : "";
    info.identity = "fake-igd";
    info.address = address;
    info.detail = reachable ? "fake IGD" : "no answer";
    return info;
  }
  Result<Lease> Map(const MapRequest& r) override {
    if (on_map) on_map();
    if (!reachable) return Fail(MakeUpnpError(-3), "no answer");
    if (refuse_with) return Fail(MakeUpnpError(*refuse_with), "refused");
    if (auto it = table.find({r.transport, r.external_port});
        conflict_on_taken && it != table.end() &&
        it->second.internal_address != r.internal_address) {
      return Fail(MakeUpnpError(718), "ConflictInMappingEntry");
    }
    ++maps;
    table[{r.transport, r.external_port}] =
        GatewayEntry{r.transport,     r.external_port, r.internal_address,
                     r.internal_port, r.description,   r.lifetime};
    return Lease{kind,
                 r.transport,
                 r.internal_address,
                 r.internal_port,
                 external_address,
                 r.external_port,
                 r.lifetime};
  }
  bool CanMapFor(std::string_view internal) const override {
    return third_party || internal == local;
  }
  bool CanList() const override { return true; }
  Result<std::string> Heartbeat() override {
    ++heartbeats;
    if (!reachable) return Fail(MakeUpnpError(-3), "no answer");
    return external_address;  // as UPnP's GetExternalIPAddress and NAT-PMP's request tell it
  }
  bool TakeStateLoss() override { return std::exchange(state_lost, false); }
  Result<void> Unmap(const MapRequest& r) override {
    if (!reachable) return Fail(MakeUpnpError(-3), "no answer");
    if (refuse_unmap.count(r.external_port))
      return Fail(MakeUpnpError(606), "Action not authorized");
    ++unmaps;
    table.erase({r.transport, r.external_port});
    return {};
  }
  Result<std::optional<GatewayEntry>> GetEntry(Transport t, uint16_t port) override {
    if (!reachable) return Fail(MakeUpnpError(-3), "no answer");
    auto it = table.find({t, port});
    if (it == table.end()) return std::optional<GatewayEntry>();
    return std::optional<GatewayEntry>(it->second);
  }
  Result<std::vector<GatewayEntry>> ListEntries() override {
    if (!reachable) return Fail(MakeUpnpError(-3), "no answer");
    ++lists;
    if (list_fails) return Fail(MakeUpnpError(501), "ActionFailed");
    std::vector<GatewayEntry> out;
    for (const auto& [k, e] : table) out.push_back(e);
    return out;
  }
};

}  // namespace natpilot::testing
