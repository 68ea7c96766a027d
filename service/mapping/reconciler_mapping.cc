// The reconciler and each mapping: which protocol, map or renew, refusals, static rules.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/event_kinds.h"
#include "mapping/reconciler.h"
#include "mapping/reconciler_internal.h"
#include "portmap/netutil.h"

namespace natpilot {

PortMapper* Reconciler::ByProtocol(GatewayProtocol protocol) const {
  for (size_t i = 0; i < mappers_.size(); ++i) {
    if (mappers_[i]->protocol() == protocol && prober_.Usable(i)) return mappers_[i];
  }
  return nullptr;
}

bool Reconciler::ProbesPending() const {
  for (const auto& r : prober_.Reports()) {
    if (!r.done) return true;
  }
  return false;
}

std::vector<PortMapper*> Reconciler::Candidates(const Mapping& m) const {
  std::vector<PortMapper*> out;
  if (HasLease(m)) {
    if (PortMapper* own = ByProtocol(m.protocol)) out.push_back(own);
    return out;
  }
  for (size_t i = 0; i < mappers_.size(); ++i) {
    if (prober_.Usable(i) && mappers_[i]->CanMapFor(m.internal_address)) out.push_back(mappers_[i]);
  }
  return out;
}

namespace {
std::string NewNonce() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 24; ++i) out += kHex[rng() % 16];
  return out;
}
}  // namespace

// Asks each candidate in turn while they refuse; returns the first lease or the first failure
// that is not a refusal. Refusals are collected for the caller.
Result<Lease> Reconciler::TryCandidates(Mapping& m, const std::vector<PortMapper*>& candidates,
                                        std::vector<Error>& refusals) {
  for (PortMapper* mapper : candidates) {
    if (mapper->protocol() == GatewayProtocol::kPcp && m.nonce.empty()) {
      // The nonce is in the store before the request leaves: after a crash the mapping can still
      // be deleted (a delete with another nonce is refused).
      m.nonce = NewNonce();
      auto saved = store_.SaveMappings({m}, {});
      if (!saved || *saved > 0) {
        // Removed, moved or released since the pass began (or the nonce could not be kept):
        // nothing goes out for it.
        return Fail(Errc::kFailedPrecondition,
                    saved ? "no longer wanted as it was"
                          : "cannot keep the PCP nonce: " + saved.error().message);
      }
    }
    MapRequest req{m.transport,     m.internal_address,      m.internal_port,
                   m.external_port, options_.lease_lifetime, Tag(m.device),
                   m.nonce};
    const bool renewal = HasLease(m) && m.protocol == mapper->protocol();
    const auto start = std::chrono::steady_clock::now();
    auto lease = mapper->Map(req);
    {
      std::lock_guard lock(gateway_mu_);
      stats_.last_rtt_ms[mapper->protocol()] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      ++(lease ? (renewal ? stats_.renewals : stats_.maps) : stats_.failures)[mapper->protocol()];
    }
    // A gateway's "no" (core/error.h Refusal: a table full, a port taken, not allowed) is policy:
    // ask the next candidate; anything else is a failure, retried.
    if (lease || !IsRefusal(lease.error().code)) return lease;
    refusals.push_back(lease.error());
  }
  return Fail(Errc::kPermissionDenied, "refused");
}

bool Reconciler::MapOne(Mapping& m, TimePoint now, Tally& tally) {
  const bool renewal = HasLease(m);
  const auto candidates = Candidates(m);
  if (candidates.empty()) {
    if (ProbesPending()) return true;  // a slower protocol may still turn out to serve it
    Error none{make_error_code(Errc::kFailedPrecondition),
               renewal ? "the protocol that granted this lease is no longer usable"
                       : "no usable protocol can map to " + m.internal_address +
                             " (NAT-PMP maps only to natpilotd's own host)"};
    return Refused(m, {none}, now, tally);
  }
  std::vector<Error> refusals;
  auto lease = TryCandidates(m, candidates, refusals);
  if (lease) {
    const Seconds lifetime =
        lease->lifetime.count() > 0 ? lease->lifetime : options_.lease_lifetime;
    const double fraction =
        options_.renew_fraction + options_.jitter_fraction * std::clamp(random_(), 0.0, 1.0);
    if (!renewal || m.state != MappingState::kActive) ++tally.activated[m.device];
    tally.via[m.device] = lease->protocol;
    m.state = MappingState::kActive;
    m.protocol = lease->protocol;
    m.external_address = lease->external_address;
    m.external_port = lease->external_port;
    m.granted_at = now;
    m.expires_at = lease->lifetime.count() > 0 ? now + lease->lifetime : TimePoint{};
    m.renew_at = now + std::chrono::duration_cast<Seconds>(lifetime * (1.0 - fraction));
    m.failures = 0;
    m.next_attempt_at = TimePoint{};
    m.detail = lease->lifetime.count() > 0 ? "" : "the gateway grants only permanent leases";
    if (lease->protocol == GatewayProtocol::kPcp) {
      // A PCP answer carries the address the server assigned now; UPnP's and NAT-PMP's leases
      // carry their mapper's cached one (their heartbeat asks afresh), which must not flip the
      // fact back to an old address.
      NoteExternalAddress(lease->external_address, now,
                          "a pcp answer for " + std::to_string(m.external_port) + "/" +
                              std::string(ToString(m.transport)));
    }
    if (const std::string current = ExternalAddress(); !current.empty()) {
      m.external_address = current;
    }
    return true;
  }
  if (!refusals.empty() && refusals.size() == candidates.size() && !renewal) {
    if (ProbesPending()) {
      // A protocol still being probed may yet serve it: ask again shortly, not static rules yet.
      m.next_attempt_at = now + Seconds(1);
      m.detail = refusals.back().message + "; waiting for the other protocols' probes";
      return true;
    }
    return Refused(m, refusals, now, tally);
  }
  const Error& error = refusals.size() == candidates.size() ? refusals.back() : lease.error();
  // A gateway that does not answer is the gateway's state, not this mapping's: its backoff does
  // not grow (the pass stops and the gateway is probed), so everything is due when it is back.
  const bool unreachable = IsUnreachable(error);
  if (!unreachable) ++m.failures;
  const TimePoint retry = unreachable
                              ? now + options_.retry_min
                              : Backoff(now, m.failures, options_.retry_min, options_.retry_max);
  const bool still_valid = renewal && (m.expires_at == TimePoint{} || now < m.expires_at);
  if (still_valid) {
    m.state = MappingState::kRenewing;
    m.renew_at = retry;
  } else {
    m.state = MappingState::kFailed;
    m.protocol = GatewayProtocol::kNone;
    m.external_address.clear();
    m.next_attempt_at = retry;
  }
  m.detail = error.message;
  auto& [count, reason] = tally.failed[m.device];
  ++count;
  reason = error.message;
  if (unreachable) {
    // The request may have reached the gateway and only its answer been lost: a UPnP entry made
    // so is tagged, and the next table read (at the next periodic check) finds it.
    unconfirmed_requests_ = true;
    probe_requested_ = true;
    return false;  // stop this pass; the next one probes first
  }
  return true;
}

bool Reconciler::ForcedStatic(const Mapping& m) const {
  return options_.force_static_all || options_.force_static_devices.count(m.device) > 0;
}

// Finds a block of the same size above the current one that no device wants and that is free on
// the gateway, and moves the device's RTP range there (same-port mappings, so the PBX only has to
// learn the new range). Returns false when no such block exists.
bool Reconciler::MoveRtpBlock(const Mapping& m, const std::string& holder, TimePoint now) {
  auto device = store_.GetDevice(m.device);
  PortMapper* lister = ByProtocol(GatewayProtocol::kUpnpIgd);
  if (!device || lister == nullptr) return false;
  const PortRange old = device->plan.rtp;
  const uint32_t size = old.size();
  for (uint32_t first = uint32_t(old.last) + 1; first + size - 1 <= 65535; first += size) {
    const PortRange block{static_cast<uint16_t>(first), static_cast<uint16_t>(first + size - 1)};
    if (device->plan.sip_udp && block.overlaps(device->plan.sip)) continue;
    bool free = true;
    for (uint32_t p = block.first; p <= block.last && free; ++p) {
      auto entry = lister->GetEntry(Transport::kUdp, static_cast<uint16_t>(p));
      free = entry && !entry->has_value();
    }
    if (!free) continue;
    Device moved = *device;
    moved.plan.rtp = block;
    moved.updated_at = now;
    auto updated = store_.UpdateDevice(
        moved,
        Event{0, now, event::kDeviceRtpMoved, m.device, kReconcilerCaller,
              "RTP " + ToString(old) + " -> " + ToString(block) + ": port " +
                  std::to_string(m.external_port) + "/udp is held on the gateway by " + holder +
                  "; the PBX or ATA must use the new range"},
        Store::Released::kKeep);
    if (!updated) continue;  // another device wants that block; try the next
    spdlog::info("device.rtp-moved {}: RTP {} -> {}", m.device, ToString(old), ToString(block));
    rerun_ = true;
    return true;
  }
  return false;
}

bool Reconciler::Refused(Mapping& m, const std::vector<Error>& refusals, TimePoint now,
                         Tally& tally) {
  // UPnP 718 means either that another host holds the external port, or (miniupnpd secure mode,
  // upnpredirect.c) that the gateway maps only to the host that asks. Reading the entry tells the
  // two apart: a real holder is a conflict that static rules cannot solve either.
  PortMapper* lister = ByProtocol(GatewayProtocol::kUpnpIgd);
  for (const Error& e : refusals) {
    if (lister == nullptr || e.code != Refusal::kPortTaken) continue;
    auto entry = lister->GetEntry(m.transport, m.external_port);
    if (entry && entry->has_value() && (*entry)->internal_address != m.internal_address) {
      // An entry pointing at another registered device is not named (a device token reads this
      // detail and learns nothing about other devices; the admin sees that device's mappings).
      // Any other holder is named with its description, whatever that claims to be.
      bool ours = false;
      for (const Device& d : store_.ListDevices())
        ours = ours || d.address == (*entry)->internal_address;
      const std::string holder =
          ours ? std::string("another device registered with natpilot")
               : (*entry)->internal_address + ":" + std::to_string((*entry)->internal_port);
      // RTP is mapped same-port, so a taken RTP port moves the device's whole RTP block to a free
      // one; the PBX configuration follows the new range.
      const bool move = m.purpose == Purpose::kRtp;
      if (move) pending_move_ = std::make_pair(m, holder);
      ++m.failures;
      m.state = MappingState::kFailed;
      m.next_attempt_at = Backoff(now, m.failures, options_.retry_min, options_.retry_max);
      m.detail = "external port " + std::to_string(m.external_port) +
                 " is held on the gateway by " + holder +
                 (ours ? "" : " (" + (*entry)->description + ")");
      auto& [count, reason] = tally.failed[m.device];
      ++count;
      reason = m.detail;
      return !move;  // a move changes the device's plan: stop this pass, save, then move
    }
  }
  m.state = MappingState::kStaticRule;
  m.protocol = GatewayProtocol::kNone;
  m.external_address.clear();
  m.failures = 0;
  // Refusals are policy and rarely change; ask again only now and then.
  m.next_attempt_at = now + options_.retry_max;
  std::string why;
  bool full = false;
  for (const Error& e : refusals) {
    why += (why.empty() ? "" : "; ") + e.message;
    full = full || e.code == Refusal::kTableFull;
  }
  m.detail = "the gateway refused (" + why +
             "): " + (full ? "its mapping table is full" : "third-party mapping refused") +
             "; provided by static rules";
  auto& [count, reason] = tally.static_rule[m.device];
  ++count;
  reason = m.detail;
  return true;
}

TimePoint Reconciler::ProcessMappings(TimePoint now) {
  CheckStateLoss(now);
  auto mappings = store_.ListMappings();
  if (!mappings) return now + options_.retry_min;
  Tally tally;
  std::vector<Mapping> batch;
  auto flush = [&](bool last) {
    std::vector<Event> events;
    if (last) {
      for (const auto& [device, n] : tally.activated) {
        Log(events, event::kMappingActive, device,
            std::to_string(n) + " mappings active via " + std::string(ToString(tally.via[device])) +
                " (external address " + ExternalAddress() + ")",
            now);
      }
      for (const auto& [device, f] : tally.static_rule) {
        Log(events, event::kMappingStaticRule, device,
            std::to_string(f.first) + " mappings now need static rules: " + f.second, now);
      }
      for (const auto& [device, f] : tally.failed) {
        Log(events, event::kMappingFailed, device,
            std::to_string(f.first) + " mappings failed or not renewed; last reason: " + f.second,
            now);
      }
    }
    uint32_t stale = 0;
    // The pass's copies may predate an address change noticed during it: leases carry the fact.
    if (const std::string current = ExternalAddress(); !current.empty()) {
      for (Mapping& m : batch) {
        if (HasLease(m)) m.external_address = current;
      }
    }
    if (!batch.empty() || !events.empty()) {
      stale = store_.SaveMappings(batch, std::move(events)).value_or(0);
    }
    batch.clear();
    return stale;
  };
  for (Mapping& m : *mappings) {
    if (m.released) continue;
    if (ForcedStatic(m)) {
      if (m.state == MappingState::kStaticRule && m.protocol == GatewayProtocol::kNone) continue;
      if (PortMapper* own = HasLease(m) ? ByProtocol(m.protocol) : nullptr) {
        (void)own->Unmap(MapRequest{m.transport, m.internal_address, m.internal_port,
                                    m.external_port, Seconds(0), "", m.nonce});
      }
      m.state = MappingState::kStaticRule;
      m.protocol = GatewayProtocol::kNone;
      m.next_attempt_at = TimePoint::max();
      m.detail = "static rules forced by config";
      ++tally.static_rule[m.device].first;
      tally.static_rule[m.device].second = m.detail;
      batch.push_back(m);
      continue;
    }
    const bool due = HasLease(m) ? now >= m.renew_at : now >= m.next_attempt_at;
    if (!due) continue;
    const bool go_on = MapOne(m, now, tally);
    batch.push_back(m);
    if (!go_on) break;
    if (batch.size() >= options_.save_batch && flush(false) > 0) {
      // The intent changed under this pass (what it got is queued for release): start over
      // from the store instead of mapping the rest of a stale copy.
      rerun_ = true;
      break;
    }
  }
  flush(true);
  if (pending_move_) {
    auto [mapping, holder] = *std::exchange(pending_move_, std::nullopt);
    if (MoveRtpBlock(mapping, holder, now)) return now;
  }
  TimePoint due = TimePoint::max();
  for (const Mapping& m : *mappings) {
    if (!m.released) due = std::min(due, HasLease(m) ? m.renew_at : m.next_attempt_at);
  }
  return due;
}

}  // namespace natpilot
