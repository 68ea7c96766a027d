#include "mapping/reconciler.h"

#include "portmap/netutil.h"
#include "portmap/pcp_codec.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

namespace natpilot {

namespace {
constexpr const char* kCaller = "natpilotd";

bool HasLease(const Mapping& m) {
  return m.state == MappingState::kActive || m.state == MappingState::kRenewing;
}

bool IsUnreachable(const Error& e) {
  // miniupnpc's HTTP failure (-3) or our own kUnavailable: the gateway is gone, not refusing.
  return (e.code.category() == UpnpCategory() && e.code.value() == -3) ||
         e.code == make_error_code(Errc::kUnavailable);
}
}  // namespace

// Counts per device of what one pass did, turned into one event per device and outcome.
struct Reconciler::Tally {
  std::map<std::string, uint32_t> activated;
  std::map<std::string, GatewayProtocol> via;
  std::map<std::string, std::pair<uint32_t, std::string>> failed;       // count, last reason
  std::map<std::string, std::pair<uint32_t, std::string>> static_rule;  // count, reason
};

Reconciler::Reconciler(Store& store, std::vector<PortMapper*> mappers, ReconcilerOptions options,
                       NowFn now, RandomFn random)
    : store_(store),
      mappers_(mappers),
      prober_(mappers, options.preference_window),
      options_(options),
      now_(std::move(now)),
      random_(std::move(random)),
      tag_prefix_("natpilot " + store.InstanceId() + " ") {
  if (!random_) {
    random_ = [rng = std::mt19937(std::random_device{}())]() mutable {
      return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    };
  }
}

Reconciler::~Reconciler() { Stop(); }

std::string Reconciler::Tag(std::string_view device) const { return tag_prefix_ + std::string(device); }

GatewaySnapshot Reconciler::Gateway() const {
  GatewaySnapshot snapshot;
  {
    std::lock_guard lock(gateway_mu_);
    snapshot = gateway_;
  }
  // Probes that finished after the decision report here too.
  if (!snapshot.protocols.empty()) snapshot.protocols = prober_.Reports();
  return snapshot;
}

void Reconciler::AnnounceFrom(const std::string& sender) {
  if (sender != Gateway().info.address) return;  // not our gateway: ignore
  spdlog::info("PCP ANNOUNCE from {}: checking the gateway now", sender);
  verify_requested_ = true;
  Wake();
}

void Reconciler::RequestProbe() {
  probe_requested_ = true;
  Wake();
}

void Reconciler::Log(std::vector<Event>& events, std::string kind, std::string device,
                     std::string message, TimePoint now) const {
  spdlog::info("{}{}{}: {}", kind, device.empty() ? "" : " ", device, message);
  events.push_back(Event{0, now, std::move(kind), std::move(device), kCaller, std::move(message)});
}

TimePoint Reconciler::Backoff(TimePoint now, uint32_t failures, Seconds min, Seconds max) const {
  const uint32_t shift = std::min<uint32_t>(failures > 0 ? failures - 1 : 0, 16);
  return now + std::min<Seconds>(max, min * (1LL << shift));
}

TimePoint Reconciler::RunOnce() {
  const TimePoint now = now_();
  rerun_ = false;
  try {
    if (!ProbeIfDue(now)) {
      MarkUnreachable(now);
      if (after_pass_) after_pass_();
      return NextWake(now, TimePoint::max());
    }
    if (verify_requested_.exchange(false) || now >= next_verify_) Verify(now);
    if (!table_synced_ && now >= next_sync_) SyncWithGatewayTable(now);
    if (now >= next_release_) ProcessReleases(now);
    const TimePoint due = ProcessMappings(now);
    if (after_pass_) after_pass_();
    return NextWake(now, due);
  } catch (const std::exception& e) {
    // A pass must never take the daemon down; log it and try again soon.
    spdlog::error("reconciler pass failed: {}", e.what());
    return now + options_.retry_min;
  }
}

bool Reconciler::ProbeIfDue(TimePoint now) {
  if (!probe_requested_.exchange(false) && now < next_probe_) return ready_;
  chosen_ = prober_.Run();
  const std::vector<ProtocolReport> reports = prober_.Reports();
  GatewayInfo info;
  if (chosen_ >= 0) {
    info = reports[static_cast<size_t>(chosen_)].info;
  } else {
    info.status = GatewayInfo::Status::kNotFound;
    for (const auto& r : reports) {
      if (r.info.status == GatewayInfo::Status::kNotConnected) info.status = r.info.status;
      info.detail += (info.detail.empty() ? "" : "; ") + std::string(ToString(r.protocol)) + ": " +
                     r.info.detail;
    }
  }
  GatewaySnapshot before = Gateway();
  std::vector<Event> events;
  const bool ok = info.status == GatewayInfo::Status::kReady;
  if (ok) {
    probe_failures_ = 0;
    next_probe_ = now + options_.probe_interval;
    const bool new_router = !before.info.address.empty() && !info.address.empty() &&
                            before.info.address != info.address;
    if (new_router) {
      // Another router answers: the leases were on the old one. Map everything on the new one.
      ForgetLeases(now, "a new gateway (" + before.info.address + " -> " + info.address +
                            "); mapping everything there");
    }
    if (!ready_ || new_router || before.info.identity != info.identity) {
      Log(events, new_router ? "gateway.changed" : "gateway.found", "",
          info.detail + ", external address " + info.external_address, now);
      // A gateway seen for the first time (or a new one): read its table before mapping.
      table_synced_ = false;
    } else if (before.info.external_address != info.external_address) {
      Log(events, "gateway.external-address-changed", "",
          before.info.external_address + " -> " + info.external_address, now);
    }
  } else {
    ++probe_failures_;
    next_probe_ = Backoff(now, probe_failures_, options_.probe_retry_min, options_.probe_retry_max);
    if (ready_ || before.info.status != info.status || before.info.detail != info.detail) {
      Log(events, ready_ ? "gateway.lost" : "gateway.not-found", "",
          info.detail + "; trying again on its own", now);
    }
  }
  ready_ = ok;
  {
    std::lock_guard lock(gateway_mu_);
    gateway_ = GatewaySnapshot{info, reports, now, next_probe_};
  }
  if (!events.empty()) (void)store_.AppendEvents(std::move(events));
  return ready_;
}

void Reconciler::MarkUnreachable(TimePoint now) {
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  const std::string detail = "no usable gateway: " + Gateway().info.detail;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    const bool lease_left = HasLease(m) && (m.expires_at == TimePoint{} || now < m.expires_at);
    if (m.released || lease_left) continue;  // a held lease stays until it expires
    if (m.state == MappingState::kUnmapped && m.detail == detail) continue;
    m.state = MappingState::kUnmapped;
    m.protocol = GatewayProtocol::kNone;
    m.detail = detail;
    m.next_attempt_at = now;
    changed.push_back(std::move(m));
  }
  if (!changed.empty()) (void)store_.SaveMappings(changed, {});
}

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
// A gateway's "no" to this mapping, as opposed to a failure: UPnP 718/606 (miniupnpd secure mode
// answers 718 for another host's address), PCP NOT_AUTHORIZED/UNSUPP_OPTION (THIRD_PARTY not
// allowed, RFC 6887 13.1).
bool IsRefusal(const Error& e) {
  if (e.code.category() == UpnpCategory()) {
    return e.code.value() == upnp::kConflictInMappingEntry || e.code.value() == upnp::kActionNotAuthorized;
  }
  if (e.code.category() == pcp::PcpCategory()) {
    const auto r = static_cast<pcp::ResultCode>(e.code.value());
    return r == pcp::ResultCode::kNotAuthorized || r == pcp::ResultCode::kUnsuppOption;
  }
  return false;
}

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
      (void)store_.SaveMappings({m}, {});
    }
    MapRequest req{m.transport, m.internal_address, m.internal_port, m.external_port,
                   options_.lease_lifetime, Tag(m.device), m.nonce};
    auto lease = mapper->Map(req);
    if (lease || !IsRefusal(lease.error())) return lease;
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
    const Seconds lifetime = lease->lifetime.count() > 0 ? lease->lifetime : options_.lease_lifetime;
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
    NoteExternalAddress(lease->external_address, now);
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
  ++m.failures;
  const TimePoint retry = Backoff(now, m.failures, options_.retry_min, options_.retry_max);
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
  if (IsUnreachable(error)) {
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
        moved, Event{0, now, "device.rtp-moved", m.device, kCaller,
                     "RTP " + ToString(old) + " -> " + ToString(block) + ": port " +
                         std::to_string(m.external_port) + "/udp is held on the gateway by " +
                         holder + "; the PBX or ATA must use the new range"});
    if (!updated) continue;  // another device wants that block; try the next
    spdlog::info("device.rtp-moved {}: RTP {} -> {}", m.device, ToString(old), ToString(block));
    rerun_ = true;
    return true;
  }
  return false;
}

bool Reconciler::Refused(Mapping& m, const std::vector<Error>& refusals, TimePoint now, Tally& tally) {
  // UPnP 718 means either that another host holds the external port, or (miniupnpd secure mode,
  // upnpredirect.c) that the gateway maps only to the host that asks. Reading the entry tells the
  // two apart: a real holder is a conflict that static rules cannot solve either.
  PortMapper* lister = ByProtocol(GatewayProtocol::kUpnpIgd);
  for (const Error& e : refusals) {
    if (lister == nullptr || e.code != MakeUpnpError(upnp::kConflictInMappingEntry)) continue;
    auto entry = lister->GetEntry(m.transport, m.external_port);
    if (entry && entry->has_value() && (*entry)->internal_address != m.internal_address) {
      const std::string holder =
          (*entry)->internal_address + ":" + std::to_string((*entry)->internal_port);
      // RTP is mapped same-port, so a taken RTP port moves the device's whole RTP block to a free
      // one; the PBX configuration follows the new range.
      const bool move = m.purpose == Purpose::kRtp;
      if (move) pending_move_ = std::make_pair(m, holder);
      ++m.failures;
      m.state = MappingState::kFailed;
      m.next_attempt_at = Backoff(now, m.failures, options_.retry_min, options_.retry_max);
      m.detail = "external port " + std::to_string(m.external_port) + " is held on the gateway by " +
                 (*entry)->internal_address + ":" + std::to_string((*entry)->internal_port) +
                 " (" + (*entry)->description + ")";
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
  for (const Error& e : refusals) why += (why.empty() ? "" : "; ") + e.message;
  m.detail = "the gateway refused (" + why + "): third-party mapping refused; provided by static rules";
  auto& [count, reason] = tally.static_rule[m.device];
  ++count;
  reason = m.detail;
  return true;
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
        Log(events, "mapping.active", device,
            std::to_string(n) + " mappings active via " +
                std::string(ToString(tally.via[device])) + " (external address " +
                Gateway().info.external_address + ")",
            now);
      }
      for (const auto& [device, f] : tally.static_rule) {
        Log(events, "mapping.static-rule", device,
            std::to_string(f.first) + " mappings now need static rules: " + f.second, now);
      }
      for (const auto& [device, f] : tally.failed) {
        Log(events, "mapping.failed", device,
            std::to_string(f.first) + " mappings failed or not renewed; last reason: " + f.second,
            now);
      }
    }
    if (!batch.empty() || !events.empty()) (void)store_.SaveMappings(batch, std::move(events));
    batch.clear();
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
    if (batch.size() >= options_.save_batch) flush(false);
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

TimePoint Reconciler::NextWake(TimePoint now, TimePoint mappings_due) const {
  TimePoint next = next_probe_;
  if (ready_) {
    next = std::min(next, next_verify_);
    next = std::min(next, mappings_due);
    if (releases_left_) next = std::min(next, next_release_);
    if (!table_synced_) next = std::min(next, next_sync_);
  }
  if (ProbesPending()) next = std::min(next, now + std::chrono::milliseconds(250));
  if (probe_requested_ || rerun_ || verify_requested_) next = now;
  return std::max(next, now);
}

void Reconciler::ReleaseLeasesForShutdown(std::chrono::steady_clock::time_point deadline) {
  auto mappings = store_.ListMappings();
  if (!mappings || !ready_) return;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released) continue;
    if (std::chrono::steady_clock::now() >= deadline) break;
    PortMapper* own = ByProtocol(m.protocol);
    if (own == nullptr || !own->Unmap(MapRequest{m.transport, m.internal_address, m.internal_port,
                                                 m.external_port, Seconds(0), "", m.nonce})) {
      continue;
    }
    m.state = MappingState::kPending;
    m.protocol = GatewayProtocol::kNone;
    m.next_attempt_at = TimePoint{};
    m.detail = "released at shutdown";
    changed.push_back(m);
  }
  std::vector<Event> events;
  Log(events, "mapping.released", "",
      std::to_string(changed.size()) + " leases deleted from the gateway at shutdown", now_());
  (void)store_.SaveMappings(changed, std::move(events));
}

void Reconciler::Start() {
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Wake() {
  {
    std::lock_guard lock(loop_mu_);
    woken_ = true;
  }
  loop_cv_.notify_all();
}

void Reconciler::Loop() {
  std::unique_lock lock(loop_mu_);
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    const TimePoint next = RunOnce();
    lock.lock();
    // Leases are wall-clock; sleep on the steady clock for the remaining span.
    const auto wait = std::max(std::chrono::milliseconds(0),
                               std::chrono::duration_cast<std::chrono::milliseconds>(next - now_()));
    loop_cv_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
  }
}

}  // namespace natpilot
