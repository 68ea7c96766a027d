#include "mapping/reconciler.h"

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
  std::map<std::string, std::pair<uint32_t, std::string>> failed;       // count, last reason
  std::map<std::string, std::pair<uint32_t, std::string>> static_rule;  // count, reason
};

Reconciler::Reconciler(Store& store, PortMapper& mapper, ReconcilerOptions options, NowFn now,
                       RandomFn random)
    : store_(store),
      mapper_(mapper),
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
  std::lock_guard lock(gateway_mu_);
  return gateway_;
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
  try {
    if (!ProbeIfDue(now)) {
      MarkUnreachable(now);
      if (after_pass_) after_pass_();
      return NextWake(now, TimePoint::max());
    }
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
  const GatewayInfo info = mapper_.Probe();
  GatewaySnapshot before = Gateway();
  std::vector<Event> events;
  const bool ok = info.status == GatewayInfo::Status::kReady;
  if (ok) {
    probe_failures_ = 0;
    next_probe_ = now + options_.probe_interval;
    if (!ready_ || before.info.identity != info.identity) {
      Log(events, "gateway.found", "", info.detail + ", external address " + info.external_address,
          now);
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
    gateway_ = GatewaySnapshot{info, now, next_probe_};
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
  auto entries = mapper_.ListEntries();
  if (!entries) {
    ++sync_failures_;
    next_sync_ = Backoff(now, sync_failures_, options_.retry_min, options_.retry_max);
    spdlog::warn("cannot read the gateway's mapping table: {}; trying again", entries.error().message);
    return;
  }
  sync_failures_ = 0;
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  const std::string ext = Gateway().info.external_address;
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
      m->protocol = mapper_.protocol();
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
      orphans.push_back(Release{0, mapper_.protocol(), e.transport, e.external_port,
                                e.internal_address, e.internal_port,
                                e.description.substr(tag_prefix_.size()), 0});
    }
  }
  std::vector<Event> events;
  for (const auto& [device, n] : adopted) {
    Log(events, "mapping.adopted", device,
        std::to_string(n) + " live gateway entries adopted without adding them again", now);
  }
  std::map<std::string, uint32_t> lost;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released || seen.count(m.id)) continue;
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
    auto entry = mapper_.GetEntry(r.transport, r.external_port);
    Result<void> done;
    if (!entry) {
      done = tl::unexpected(entry.error());
    } else if (entry->has_value() && (*entry)->internal_address == r.internal_address &&
               (*entry)->internal_port == r.internal_port) {
      done = mapper_.Unmap(r.transport, r.external_port);
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

bool Reconciler::MapOne(Mapping& m, TimePoint now, Tally& tally) {
  const bool renewal = HasLease(m);
  MapRequest req{m.transport, m.internal_address, m.internal_port, m.external_port,
                 options_.lease_lifetime, Tag(m.device)};
  auto lease = mapper_.Map(req);
  if (lease) {
    const Seconds lifetime = lease->lifetime.count() > 0 ? lease->lifetime : options_.lease_lifetime;
    const double fraction =
        options_.renew_fraction + options_.jitter_fraction * std::clamp(random_(), 0.0, 1.0);
    if (!renewal || m.state != MappingState::kActive) ++tally.activated[m.device];
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
    return true;
  }
  const int code = lease.error().code.category() == UpnpCategory() ? lease.error().code.value() : 0;
  if (!renewal && (code == upnp::kConflictInMappingEntry || code == upnp::kActionNotAuthorized)) {
    Refused(m, lease.error(), now, tally);
    return true;
  }
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
  m.detail = lease.error().message;
  auto& [count, reason] = tally.failed[m.device];
  ++count;
  reason = lease.error().message;
  if (IsUnreachable(lease.error())) {
    probe_requested_ = true;
    return false;  // stop this pass; the next one probes first
  }
  return true;
}

bool Reconciler::ForcedStatic(const Mapping& m) const {
  return options_.force_static_all || options_.force_static_devices.count(m.device) > 0;
}

void Reconciler::Refused(Mapping& m, const Error& error, TimePoint now, Tally& tally) {
  // 718 means either that another host holds the external port, or (miniupnpd secure mode,
  // upnpredirect.c) that the gateway maps only to the host that asks. Reading the entry tells
  // the two apart: a real holder is a conflict static rules cannot solve either.
  if (error.code.value() == upnp::kConflictInMappingEntry) {
    auto entry = mapper_.GetEntry(m.transport, m.external_port);
    if (entry && entry->has_value() && (*entry)->internal_address != m.internal_address) {
      ++m.failures;
      m.state = MappingState::kFailed;
      m.next_attempt_at = Backoff(now, m.failures, options_.retry_min, options_.retry_max);
      m.detail = "external port " + std::to_string(m.external_port) + " is held on the gateway by " +
                 (*entry)->internal_address + ":" + std::to_string((*entry)->internal_port) +
                 " (" + (*entry)->description + ")";
      auto& [count, reason] = tally.failed[m.device];
      ++count;
      reason = m.detail;
      return;
    }
  }
  m.state = MappingState::kStaticRule;
  m.protocol = GatewayProtocol::kNone;
  m.external_address.clear();
  m.failures = 0;
  // Refusals are policy and rarely change; ask again only now and then.
  m.next_attempt_at = now + options_.retry_max;
  m.detail = "the gateway refused (" + error.message +
             "): third-party mapping refused; provided by static rules";
  auto& [count, reason] = tally.static_rule[m.device];
  ++count;
  reason = m.detail;
}

TimePoint Reconciler::ProcessMappings(TimePoint now) {
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
                std::string(ToString(mapper_.protocol())) + " (external address " +
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
      if (HasLease(m)) (void)mapper_.Unmap(m.transport, m.external_port);
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
  TimePoint due = TimePoint::max();
  for (const Mapping& m : *mappings) {
    if (!m.released) due = std::min(due, HasLease(m) ? m.renew_at : m.next_attempt_at);
  }
  return due;
}

TimePoint Reconciler::NextWake(TimePoint now, TimePoint mappings_due) const {
  TimePoint next = next_probe_;
  if (ready_) {
    next = std::min(next, mappings_due);
    if (releases_left_) next = std::min(next, next_release_);
    if (!table_synced_) next = std::min(next, next_sync_);
  }
  if (probe_requested_) next = now;
  return std::max(next, now);
}

void Reconciler::ReleaseLeasesForShutdown(std::chrono::steady_clock::time_point deadline) {
  auto mappings = store_.ListMappings();
  if (!mappings || !ready_) return;
  std::vector<Mapping> changed;
  for (Mapping& m : *mappings) {
    if (!HasLease(m) || m.released) continue;
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (!mapper_.Unmap(m.transport, m.external_port)) continue;
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
