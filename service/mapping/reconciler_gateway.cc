// The reconciler and the gateway's own state: its table, releases, periodic checks, resets.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>
#include <tuple>

#include "core/event_kinds.h"
#include "core/validate.h"
#include "mapping/reconciler.h"
#include "mapping/reconciler_internal.h"
#include "portmap/netutil.h"

namespace natpilot {

namespace {
using Forward = std::tuple<Transport, uint16_t, std::string, uint16_t>;
Forward ForwardOf(const Release& r) {
  return {r.transport, r.external_port, r.internal_address, r.internal_port};
}
Forward ForwardOf(const Mapping& m) {
  return {m.transport, m.external_port, m.internal_address, m.internal_port};
}
}  // namespace

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
    spdlog::warn("cannot read the gateway's mapping table: {}; trying again",
                 entries.error().message);
    return;
  }
  sync_failures_ = 0;
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  // The gateway's external address is one fact (see NoteExternalAddress); a probe report's may be
  // older.
  std::string ext = ExternalAddress();
  if (ext.empty()) {
    for (const auto& r : Gateway().protocols) {
      if (r.protocol == lister->protocol()) ext = r.info.external_address;
    }
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
    Log(events, event::kMappingAdopted, device,
        std::to_string(n) + " live gateway entries adopted without adding them again", now);
  }
  std::set<Forward> present;  // every entry, ours or not (PCP's are not tagged)
  for (const GatewayEntry& e : *entries) {
    present.insert({e.transport, e.external_port, e.internal_address, e.internal_port});
  }
  std::map<std::string, uint32_t> lost;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released || seen.count(m.id)) continue;
    if (m.protocol != lister->protocol()) {
      if (present.count(ForwardOf(m))) listed_by_upnp_.insert(m.protocol);
      if (present.count(ForwardOf(m)) || !ListedByUpnp(m.protocol)) continue;
    }
    m.state = MappingState::kPending;  // the gateway forgot it: add it again now
    m.protocol = GatewayProtocol::kNone;
    m.next_attempt_at = now;
    m.detail = "the gateway no longer had this entry; adding it again";
    ++lost[m.device];
    changed.push_back(m);
  }
  for (const auto& [device, n] : lost) {
    Log(events, event::kMappingLost, device, std::to_string(n) + " entries missing on the gateway",
        now);
  }
  if (!orphans.empty()) {
    std::vector<Event> none;
    Log(none, event::kMappingOrphans, "",
        std::to_string(orphans.size()) + " tagged gateway entries that nothing wants; deleting",
        now);
    (void)store_.AddReleases(orphans, std::move(none));
  }
  (void)store_.SaveMappings(changed, std::move(events));
  table_synced_ = true;
}

void Reconciler::ProcessReleases(TimePoint now) {
  const std::vector<Release> releases = store_.ListReleases();
  releases_left_ = false;
  if (releases.empty()) {
    release_backoff_.clear();
    return;
  }
  // A forward a mapping holds now (the device came back, moved back, or a new protocol took the
  // entry over) is wanted: deleting it would leave that mapping `active` for nothing.
  std::set<Forward> held;
  if (auto mappings = store_.ListMappings()) {
    for (const Mapping& m : *mappings) {
      if (HasLease(m) && !m.released) held.insert(ForwardOf(m));
    }
  }
  std::map<std::string, uint32_t> released;
  std::set<int64_t> queued;
  next_release_ = TimePoint::max();
  for (const Release& r : releases) {
    queued.insert(r.id);
    if (held.count(ForwardOf(r))) {
      (void)store_.FinishRelease(r, true, {});
      continue;
    }
    auto& [failures, retry_at] = release_backoff_[r.id];
    if (now < retry_at || ByProtocol(r.protocol) == nullptr) {
      // Waiting out its own backoff, or the protocol that made it is not usable now: later.
      releases_left_ = true;
      next_release_ = std::min(next_release_, now < retry_at ? retry_at : now + options_.retry_min);
      continue;
    }
    if (auto done = ProcessRelease(r, now); !done) {
      // A refusal backs off per release; a gateway that does not answer is the gateway's state
      // (as for mappings): the release is due again as soon as it is back.
      const bool unreachable = IsUnreachable(done.error());
      if (!unreachable) ++failures;
      retry_at = unreachable ? now + options_.retry_min
                             : Backoff(now, failures, options_.retry_min, options_.retry_max);
      releases_left_ = true;
      next_release_ = std::min(next_release_, retry_at);
      if (unreachable) break;  // the others would fail the same way
      continue;
    }
    release_backoff_.erase(r.id);
    ++released[r.device];
  }
  std::erase_if(release_backoff_, [&](const auto& kv) { return !queued.count(kv.first); });
  if (!releases_left_) next_release_ = TimePoint{};
  std::vector<Event> events;
  for (const auto& [device, n] : released) {
    Log(events, event::kMappingReleased, device,
        std::to_string(n) + " entries deleted from the gateway", now);
  }
  if (!events.empty()) (void)store_.AppendEvents(std::move(events));
}

// Deletes one queued release's entry; an error when the gateway failed or refused (kept queued).
Result<void> Reconciler::ProcessRelease(const Release& r, TimePoint now) {
  PortMapper* mapper = ByProtocol(r.protocol);
  const MapRequest req{
      r.transport, r.internal_address, r.internal_port, r.external_port, Seconds(0), "", r.nonce};
  Result<void> done;
  if (mapper->CanList()) {
    // Delete only when the entry still points at the released address: the same external port
    // may belong to another device by now.
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
  if (done) {
    (void)store_.FinishRelease(r, true, {});
    return done;
  }
  if (IsUnreachable(done.error())) probe_requested_ = true;
  std::vector<Event> fail;
  Log(fail, event::kMappingReleaseFailed, r.device,
      std::to_string(r.external_port) + "/" + std::string(ToString(r.transport)) + ": " +
          done.error().message + "; retrying",
      now);
  (void)store_.FinishRelease(r, false, std::move(fail));
  return done;
}

std::string Reconciler::ExternalAddress() const {
  std::lock_guard lock(gateway_mu_);
  return gateway_.info.external_address;
}

void Reconciler::NoteExternalAddress(const std::string& told, TimePoint now,
                                     const std::string& noticed_by) {
  if (told.empty()) return;
  // What a gateway says is checked: 0.0.0.0 (miniupnpd with no WAN address, e.g. during a PPPoE
  // re-dial), multicast or broadcast is "no address", not a change.
  auto parsed = ParseIpv4Unicast(told, "external address");
  if (!parsed) {
    spdlog::warn("{} reported an unusable external address: {}", noticed_by,
                 parsed.error().message);
    return;
  }
  const std::string& address = *parsed;
  std::string before;
  {
    std::lock_guard lock(gateway_mu_);
    before = gateway_.info.external_address;
    if (before.empty()) before = last_external_;
    gateway_.info.external_address = address;
    last_external_ = address;
    if (!before.empty() && before != address) {
      gateway_.last_address_change = AddressChange{now, before, address, noticed_by};
    }
  }
  if (before == address) return;
  std::vector<Event> events;
  if (before.empty()) {
    Log(events, event::kGatewayExternalAddress, "",
        "external address " + address + " (" + noticed_by + ")", now);
    (void)store_.AppendEvents(std::move(events));
    return;
  }
  {
    std::lock_guard lock(gateway_mu_);
    ++stats_.address_changes;
  }
  // Every lease is on the same gateway: its external address is the gateway's, now. Their
  // renewals confirm it later; the PBX must not wait for them.
  std::vector<Mapping> changed;
  if (auto mappings = store_.ListMappings()) {
    for (Mapping& m : *mappings) {
      if (!HasLease(m) || m.external_address == address) continue;
      m.external_address = address;
      changed.push_back(m);
    }
  }
  Log(events, event::kGatewayExternalAddressChanged, "",
      before + " -> " + address + " (noticed by " + noticed_by + "; " +
          std::to_string(changed.size()) + " leases updated)",
      now);
  (void)store_.SaveMappings(changed, std::move(events));
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

// Re-probes for a protocol that stopped answering: 5, 10, 20, 40, 60, 60 s with the defaults.
constexpr uint32_t kMissingProbes = 6;

void Reconciler::ForgetUnusable(TimePoint now) {
  const std::vector<ProtocolReport> reports = prober_.Reports();
  std::set<GatewayProtocol> gone;
  bool gained = false;
  for (size_t i = 0; i < mappers_.size() && i < reports.size(); ++i) {
    const GatewayProtocol p = mappers_[i]->protocol();
    if (prober_.Usable(i)) {
      gained = answered_.insert(p).second || gained;
      missing_.erase(p);
    } else if (reports[i].done) {
      gone.insert(p);
      if (answered_.erase(p) > 0) missing_.insert(p);
    }
  }
  // A protocol that answers now and did not before may serve what failed or fell back to static
  // rules (e.g. a device at another host while only NAT-PMP answered): nothing waits out a backoff
  // or a refusal's long schedule earned with the others.
  if (gained) RetryAllNow(now, true);
  if (!ProbesPending()) {
    check_unusable_ = false;
    if (missing_.empty()) {
      missing_probes_ = 0;
    } else if (++missing_probes_ <= kMissingProbes) {
      next_probe_ = std::min(next_probe_, Backoff(now, missing_probes_, options_.probe_retry_min,
                                                  options_.probe_retry_min * 12));
      spdlog::info("gateway: {} answered before and not now; probing again in {} s",
                   ToString(*missing_.begin()),
                   std::chrono::duration_cast<Seconds>(next_probe_ - now).count());
    } else {
      missing_.clear();  // gone for good, it seems: the normal interval from now on
      missing_probes_ = 0;
    }
  }
  if (gone.empty()) return;
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<Mapping> changed;
  std::vector<Release> stale;
  std::map<std::string, uint32_t> lost;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released || !gone.count(m.protocol)) continue;
    // The entry may still be on the gateway: queue its deletion with the protocol that made it
    // (kept while another protocol holds the same forward, see ProcessReleases).
    stale.push_back(Release{0, m.protocol, m.transport, m.external_port, m.internal_address,
                            m.internal_port, m.device, 0, m.nonce});
    m.detail =
        std::string(ToString(m.protocol)) + " no longer answers on this gateway; mapping again";
    m.state = MappingState::kPending;
    m.protocol = GatewayProtocol::kNone;
    m.external_address.clear();
    m.next_attempt_at = now;
    ++lost[m.device];
    changed.push_back(m);
  }
  if (changed.empty()) return;
  std::vector<Event> events;
  for (const auto& [device, n] : lost) {
    Log(events, event::kMappingLost, device,
        std::to_string(n) + " leases of a protocol that no longer answers; mapping again", now);
  }
  (void)store_.AddReleases(stale, {});
  (void)store_.SaveMappings(changed, std::move(events));
  releases_left_ = true;
}

void Reconciler::RetryAllNow(TimePoint now, bool static_rules) {
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    if (m.released || HasLease(m) || ForcedStatic(m) || m.next_attempt_at <= now) continue;
    // A refusal is policy, with its own schedule, unless a protocol answers now that did not.
    if (m.state == MappingState::kStaticRule && !static_rules) continue;
    m.next_attempt_at = now;
    changed.push_back(m);
  }
  if (!changed.empty()) (void)store_.SaveMappings(changed, {});
}

void Reconciler::OnAnnounce(TimePoint now, bool announced) {
  verify_requested_ = true;  // the epoch and the external address, at once
  // A UPnP event or a STUN answer says only that the address may have changed: the periodic
  // check's look at the gateway (its heartbeat) is all it costs. An ANNOUNCE (or a NAT-PMP
  // announcement) may be a restart: the table is read and every lease renewed.
  if (!announced) return;
  // An ANNOUNCE proves a PCP server answers now: one not in use is probed again.
  if (ByProtocol(GatewayProtocol::kPcp) == nullptr) probe_requested_ = true;
  if (ByProtocol(GatewayProtocol::kUpnpIgd) != nullptr) {
    table_synced_ = false;  // and the whole table, where it can be read
    next_sync_ = now;
  }
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released || m.protocol == GatewayProtocol::kUpnpIgd) continue;
    // RFC 6887 14.1.3: a restarted server announces itself; a client renews its mappings. A
    // renewal of a mapping the gateway still has changes nothing, and re-creates a lost one.
    m.renew_at = now;
    changed.push_back(m);
  }
  if (!changed.empty()) (void)store_.SaveMappings(changed, {});
}

void Reconciler::OutageCheck(TimePoint now) {
  if (last_good_ < 0 || now < next_outage_check_) return;
  next_outage_check_ = now + options_.outage_check_interval;
  PortMapper* last = mappers_[static_cast<size_t>(last_good_)];
  // UPnP has no datagram to send: its check is the probe. PCP and NAT-PMP keep their socket to
  // the last gateway: one request, and any answer means it is back.
  if (last->protocol() == GatewayProtocol::kUpnpIgd || last->Heartbeat()) probe_requested_ = true;
}

bool Reconciler::ListedByUpnp(GatewayProtocol protocol) const {
  return protocol == GatewayProtocol::kUpnpIgd || listed_by_upnp_.count(protocol) > 0;
}

void Reconciler::Verify(TimePoint now) {
  next_verify_ = now + options_.verify_interval;
  // The default route moved (another network, another router): probe again.
  const std::string current = Gateway().info.address;
  if (auto gw = DefaultGateway();
      gw && !current.empty() && options_.follow_default_route && *gw != current) {
    std::vector<Event> events;
    Log(events, event::kGatewayRouteChanged, "",
        "default route now via " + *gw + ", was " + current, now);
    (void)store_.AppendEvents(std::move(events));
    probe_requested_ = true;
    return;
  }
  for (size_t i = 0; i < mappers_.size(); ++i) {
    if (!prober_.Usable(i)) continue;
    auto external = mappers_[i]->Heartbeat();
    if (external && !external->empty()) {
      NoteExternalAddress(
          *external, now,
          (check_reason_.empty() ? std::string("the periodic check") : check_reason_) + " (" +
              std::string(ToString(mappers_[i]->protocol())) + ")");
    }
    if (!external && IsUnreachable(external.error())) probe_requested_ = true;
  }
  // UPnP has no epoch: read back a sample of our entries. A router that rebooted, or miniupnpd
  // purging idle rules (clean_ruleset_interval), shows as a missing entry; a full table read then
  // re-adds whatever is gone.
  PortMapper* lister = ByProtocol(GatewayProtocol::kUpnpIgd);
  if (lister == nullptr || !lister->CanList() || !table_synced_) return;
  if (std::exchange(unconfirmed_requests_, false)) {
    table_synced_ = false;  // a full read instead of a sample: tagged orphans are deleted too
    next_sync_ = now;
    return;
  }
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  std::vector<const Mapping*> leased;
  for (const Mapping& m : *mappings) {
    if (HasLease(m) && !m.released) leased.push_back(&m);
  }
  std::shuffle(leased.begin(), leased.end(), std::mt19937(static_cast<unsigned>(random_() * 1e9)));
  if (leased.size() > options_.verify_sample) leased.resize(options_.verify_sample);
  for (const Mapping* m : leased) {
    auto entry = lister->GetEntry(m->transport, m->external_port);
    if (!entry) return;  // the next probe will tell
    const bool present = entry->has_value() && (*entry)->internal_address == m->internal_address &&
                         (*entry)->internal_port == m->internal_port;
    // Gateways that run PCP/NAT-PMP and UPnP in one daemon (miniupnpd) show every protocol's
    // entries in the UPnP table; a missing PCP entry is evidence only once that was seen.
    if (present) listed_by_upnp_.insert(m->protocol);
    if (present || !ListedByUpnp(m->protocol)) continue;
    std::vector<Event> events;
    Log(events, event::kGatewayEntriesMissing, m->device,
        std::to_string(m->external_port) + "/" + std::string(ToString(m->transport)) +
            " is gone from the gateway (rebooted or purged); reading its table to restore",
        now);
    (void)store_.AppendEvents(std::move(events));
    table_synced_ = false;
    next_sync_ = now;
    return;
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
    Log(events, event::kGatewayStateLost, "",
        std::string(ToString(mappers_[i]->protocol())) +
            " gateway lost its state (epoch went back): "
            "restoring " +
            std::to_string(changed.size()) + " mappings",
        now);
    (void)store_.SaveMappings(changed, std::move(events));
  }
}

}  // namespace natpilot
