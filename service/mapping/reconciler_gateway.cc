// The reconciler and the gateway's own state: its table, releases, periodic checks, resets.
#include "mapping/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "mapping/reconciler_internal.h"
#include "portmap/netutil.h"
#include "portmap/pcp_codec.h"

namespace natpilot {

void Reconciler::SyncWithGatewayTable(TimePoint now) {
  PortMapper* lister = nullptr;
  for (size_t i = 0; i < mappers_.size() && !lister; ++i) {
    if (mappers_[i]->CanList() && prober_.Usable(i)) lister = mappers_[i];
  }
  if (lister == nullptr) {
    // Only UPnP can list a table; PCP and NAT-PMP leases are trusted until they expire, and the
    // epoch tells when the gateway forgot them. A UPnP probe still running gets its turn later.
    if (!ProbesPending()) table_synced_ = true;
    return;
  }
  auto entries = lister->ListEntries();
  if (!entries) {
    ++sync_failures_;
    next_sync_ = Backoff(now, sync_failures_, options_.retry_min, options_.retry_max);
    spdlog::warn("cannot read the gateway's mapping table: {}; trying again", entries.error().message);
    return;
  }
  sync_failures_ = 0;
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::string ext;
  for (const auto& r : Gateway().protocols) {
    if (r.protocol == lister->protocol()) ext = r.info.external_address;
  }
  std::map<std::pair<Transport, uint16_t>, Mapping*> wanted;
  for (Mapping& m : *mappings) {
    if (!m.released) wanted[{m.transport, m.external_port}] = &m;
  }
  std::set<int64_t> seen;
  std::vector<Mapping> changed;
  std::vector<Release> orphans;
  std::map<std::string, uint32_t> adopted;
  for (const GatewayEntry& e : *entries) {
    if (e.description.rfind(tag_prefix_, 0) != 0) continue;  // not ours: never touched
    auto it = wanted.find({e.transport, e.external_port});
    Mapping* m = it == wanted.end() ? nullptr : it->second;
    if (m && m->internal_address == e.internal_address && m->internal_port == e.internal_port) {
      // Still live and still wanted: adopt it as it is, without adding it again.
      const Seconds lifetime = options_.lease_lifetime;
      m->state = MappingState::kActive;
      m->protocol = lister->protocol();
      m->external_address = ext;
      if (m->granted_at == TimePoint{}) m->granted_at = now;
      m->expires_at = e.remaining.count() > 0 ? now + e.remaining : TimePoint{};
      const TimePoint renew = e.remaining.count() > 0
                                  ? m->expires_at - std::chrono::duration_cast<Seconds>(
                                                        lifetime * options_.renew_fraction)
                                  : now + std::chrono::duration_cast<Seconds>(lifetime / 2);
      m->renew_at = std::max(now, renew);
      m->failures = 0;
      m->detail.clear();
      seen.insert(m->id);
      ++adopted[m->device];
      changed.push_back(*m);
    } else {
      orphans.push_back(Release{0, lister->protocol(), e.transport, e.external_port,
                                e.internal_address, e.internal_port,
                                e.description.substr(tag_prefix_.size()), 0, ""});
    }
  }
  std::vector<Event> events;
  for (const auto& [device, n] : adopted) {
    Log(events, "mapping.adopted", device,
        std::to_string(n) + " live gateway entries adopted without adding them again", now);
  }
  std::map<std::string, uint32_t> lost;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released || seen.count(m.id) || m.protocol != lister->protocol()) continue;
    m.state = MappingState::kPending;  // the gateway forgot it: add it again now
    m.protocol = GatewayProtocol::kNone;
    m.next_attempt_at = now;
    m.detail = "the gateway no longer had this entry; adding it again";
    ++lost[m.device];
    changed.push_back(m);
  }
  for (const auto& [device, n] : lost) {
    Log(events, "mapping.lost", device, std::to_string(n) + " entries missing on the gateway", now);
  }
  if (!orphans.empty()) {
    std::vector<Event> none;
    Log(none, "mapping.orphans", "",
        std::to_string(orphans.size()) + " tagged gateway entries that nothing wants; deleting", now);
    (void)store_.AddReleases(orphans, std::move(none));
  }
  (void)store_.SaveMappings(changed, std::move(events));
  table_synced_ = true;
}

void Reconciler::ProcessReleases(TimePoint now) {
  std::map<std::string, uint32_t> released;
  std::vector<Event> events;
  releases_left_ = false;
  for (const Release& r : store_.ListReleases()) {
    // Delete only when the entry still points at the released address: the same external port may
    // belong to another device by now.
    PortMapper* mapper = ByProtocol(r.protocol);
    if (mapper == nullptr) {
      releases_left_ = true;  // the protocol that made it is not usable now; later
      continue;
    }
    const MapRequest req{r.transport, r.internal_address, r.internal_port, r.external_port,
                         Seconds(0), "", r.nonce};
    Result<void> done;
    if (mapper->CanList()) {
      auto entry = mapper->GetEntry(r.transport, r.external_port);
      if (!entry) {
        done = tl::unexpected(entry.error());
      } else if (entry->has_value() && (*entry)->internal_address == r.internal_address &&
                 (*entry)->internal_port == r.internal_port) {
        done = mapper->Unmap(req);
      }
    } else {
      done = mapper->Unmap(req);
    }
    if (!done) {
      ++release_failures_;
      next_release_ = Backoff(now, release_failures_, options_.retry_min, options_.retry_max);
      std::vector<Event> fail;
      Log(fail, "mapping.release-failed", r.device,
          std::to_string(r.external_port) + "/" + std::string(ToString(r.transport)) + ": " +
              done.error().message + "; retrying",
          now);
      (void)store_.FinishRelease(r, false, std::move(fail));
      releases_left_ = true;
      break;
    }
    release_failures_ = 0;
    ++released[r.device];
    (void)store_.FinishRelease(r, true, {});
  }
  for (const auto& [device, n] : released) {
    Log(events, "mapping.released", device,
        std::to_string(n) + " entries deleted from the gateway", now);
  }
  if (!events.empty()) (void)store_.AppendEvents(std::move(events));
}

void Reconciler::NoteExternalAddress(const std::string& address, TimePoint now) {
  if (address.empty()) return;
  std::string before;
  {
    std::lock_guard lock(gateway_mu_);
    before = gateway_.info.external_address;
    gateway_.info.external_address = address;
  }
  if (before == address) return;
  std::vector<Event> events;
  Log(events, before.empty() ? "gateway.external-address" : "gateway.external-address-changed", "",
      before.empty() ? "external address " + address : before + " -> " + address, now);
  (void)store_.AppendEvents(std::move(events));
}

void Reconciler::ForgetLeases(TimePoint now, const std::string& why) {
  {
    std::lock_guard lock(gateway_mu_);
    ++stats_.state_losses;
  }
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    if (!HasLease(m)) continue;
    m.state = MappingState::kPending;
    m.protocol = GatewayProtocol::kNone;
    m.next_attempt_at = now;
    m.detail = why;
    changed.push_back(m);
  }
  (void)store_.SaveMappings(changed, {});
}

void Reconciler::Verify(TimePoint now) {
  next_verify_ = now + options_.verify_interval;
  // The default route moved (another network, another router): probe again.
  const std::string current = Gateway().info.address;
  if (auto gw = DefaultGateway(); gw && !current.empty() && options_.follow_default_route &&
                                    *gw != current) {
    std::vector<Event> events;
    Log(events, "gateway.route-changed", "", "default route now via " + *gw + ", was " + current,
        now);
    (void)store_.AppendEvents(std::move(events));
    probe_requested_ = true;
    return;
  }
  for (size_t i = 0; i < mappers_.size(); ++i) {
    if (!prober_.Usable(i)) continue;
    auto external = mappers_[i]->Heartbeat();
    if (external && !external->empty()) NoteExternalAddress(*external, now);
    if (!external && IsUnreachable(external.error())) probe_requested_ = true;
  }
  // UPnP has no epoch: read back a sample of our entries. A router that rebooted, or miniupnpd
  // purging idle rules (clean_ruleset_interval), shows as a missing entry; a full table read then
  // re-adds whatever is gone.
  PortMapper* lister = ByProtocol(GatewayProtocol::kUpnpIgd);
  if (lister == nullptr || !lister->CanList() || !table_synced_) return;
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<const Mapping*> leased;
  for (const Mapping& m : *mappings) {
    if (HasLease(m) && m.protocol == GatewayProtocol::kUpnpIgd) leased.push_back(&m);
  }
  std::shuffle(leased.begin(), leased.end(), std::mt19937(static_cast<unsigned>(random_() * 1e9)));
  if (leased.size() > options_.verify_sample) leased.resize(options_.verify_sample);
  for (const Mapping* m : leased) {
    auto entry = lister->GetEntry(m->transport, m->external_port);
    if (!entry) return;  // the next probe will tell
    if (!entry->has_value() || (*entry)->internal_address != m->internal_address) {
      std::vector<Event> events;
      Log(events, "gateway.entries-missing", m->device,
          std::to_string(m->external_port) + "/" + std::string(ToString(m->transport)) +
              " is gone from the gateway (rebooted or purged); reading its table to restore",
          now);
      (void)store_.AppendEvents(std::move(events));
      table_synced_ = false;
      next_sync_ = now;
      return;
    }
  }
}

void Reconciler::CheckStateLoss(TimePoint now) {
  for (size_t i = 0; i < mappers_.size(); ++i) {
    if (!prober_.Usable(i) || !mappers_[i]->TakeStateLoss()) continue;
    auto mappings = store_.ListMappings();
    if (!mappings) return;
    std::vector<Mapping> changed;
    for (Mapping& m : *mappings) {
      if (!HasLease(m) || m.protocol != mappers_[i]->protocol()) continue;
      m.state = MappingState::kPending;
      m.protocol = GatewayProtocol::kNone;
      m.next_attempt_at = now;
      m.detail = "the gateway lost its mappings (epoch reset); restoring";
      changed.push_back(m);
    }
    std::vector<Event> events;
    Log(events, "gateway.state-lost", "",
        std::string(ToString(mappers_[i]->protocol())) + " gateway lost its state (epoch went back): "
            "restoring " + std::to_string(changed.size()) + " mappings",
        now);
    (void)store_.SaveMappings(changed, std::move(events));
  }
}

}  // namespace natpilot
