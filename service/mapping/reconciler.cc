// The reconciler's pass, its timing and its thread.
#include "mapping/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/event_kinds.h"
#include "mapping/reconciler_internal.h"
#include "portmap/netutil.h"

namespace natpilot {

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

std::string Reconciler::Tag(std::string_view device) const {
  return tag_prefix_ + std::string(device);
}

GatewayStats Reconciler::Stats() const {
  std::lock_guard lock(gateway_mu_);
  return stats_;
}

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

void Reconciler::AnnounceFrom(const std::string& sender, const std::string& what) {
  {
    std::lock_guard lock(gateway_mu_);
    // The gateway in use, or the last one while it is gone (an ANNOUNCE then ends the wait).
    const std::string& gateway =
        gateway_.info.address.empty() ? last_gateway_address_ : gateway_.info.address;
    if (sender.empty() || sender != gateway) return;  // not our gateway: ignore
  }
  RequestCheck(what + " from " + sender, "a " + what, true);
}

void Reconciler::CheckExternalAddress(const std::string& why) { RequestCheck(why, why, false); }

void Reconciler::RequestCheck(const std::string& told, const std::string& what, bool announcement) {
  const TimePoint now = now_();
  {
    std::lock_guard lock(gateway_mu_);
    // A flood (spoofed or a looping router) costs one check per interval, no more; the last one
    // within it is still acted on at the interval's end (it may be the real restart).
    if (last_announce_ != TimePoint{} && now >= last_announce_ &&
        now < last_announce_ + options_.announce_min_interval) {
      ++stats_.announces_coalesced;
      announce_deferred_ = true;
      deferred_what_ = what;  // the last one is what the deferred check names
      deferred_probes_ = deferred_probes_ || announcement;
      return;
    }
    last_announce_ = now;
    announce_what_ = what;
    announce_probes_ = announce_probes_ || announcement;  // one still pending keeps its probe
  }
  spdlog::info("{}: checking the gateway now", told);
  announce_requested_ = true;
  Wake();
}

std::optional<Reconciler::Check> Reconciler::TakeAnnounce(TimePoint now) {
  const bool arrived = announce_requested_.exchange(false);
  std::lock_guard lock(gateway_mu_);
  if (arrived) {
    return Check{announce_what_.empty() ? std::string("a PCP ANNOUNCE") : announce_what_,
                 std::exchange(announce_probes_, false)};
  }
  if (announce_deferred_ && now >= last_announce_ + options_.announce_min_interval) {
    announce_deferred_ = false;
    last_announce_ = now;
    spdlog::info("more announcements came meanwhile: checking the gateway again");
    return Check{deferred_what_, std::exchange(deferred_probes_, false)};
  }
  return std::nullopt;
}

void Reconciler::RequestProbe() {
  probe_requested_ = true;
  Wake();
}

void Reconciler::Log(std::vector<Event>& events, std::string kind, std::string device,
                     std::string message, TimePoint now) const {
  spdlog::info("{}{}{}: {}", kind, device.empty() ? "" : " ", device, message);
  events.push_back(
      Event{0, now, std::move(kind), std::move(device), kReconcilerCaller, std::move(message)});
}

TimePoint Reconciler::Backoff(TimePoint now, uint32_t failures, Seconds min, Seconds max) const {
  const uint32_t shift = std::min<uint32_t>(failures > 0 ? failures - 1 : 0, 16);
  return now + std::min<Seconds>(max, min * (1LL << shift));
}

TimePoint Reconciler::RunOnce() {
  const TimePoint now = now_();
  rerun_ = false;
  try {
    const std::optional<Check> check = TakeAnnounce(now);
    const bool announced = check.has_value();
    // "the check after a PCP ANNOUNCE", "... after the doctor's STUN answer (x)"
    check_reason_ = check ? "the check after " + check->what : std::string();
    if (announced && !ready_) probe_requested_ = true;
    if (!ProbeIfDue(now)) {
      OutageCheck(now);
      MarkUnreachable(now);
      if (after_pass_) after_pass_();
      return NextWake(now, TimePoint::max());
    }
    if (check_unusable_) ForgetUnusable(now);
    if (check) OnAnnounce(now, check->announcement);
    if (verify_requested_.exchange(false) || now >= next_verify_) Verify(now);
    if (!table_synced_ && now >= next_sync_) SyncWithGatewayTable(now);
    if (now >= next_release_) ProcessReleases(now);
    const TimePoint due = ProcessMappings(now);
    if (after_pass_) after_pass_();
    return NextWake(now, due);
  } catch (const std::exception& e) {
    // A pass must never take the daemon down; log it and try again soon.
    spdlog::error("reconciler pass failed: {}; trying again in {} s", e.what(),
                  options_.retry_min.count());
  } catch (...) {
    spdlog::error("reconciler pass failed (unknown error); trying again in {} s",
                  options_.retry_min.count());
  }
  return now + options_.retry_min;
}

bool Reconciler::ProbeIfDue(TimePoint now) {
  if (!probe_requested_.exchange(false) && now < next_probe_) return ready_;
  const auto probe_start = std::chrono::steady_clock::now();
  chosen_ = prober_.Run();
  {
    std::lock_guard lock(gateway_mu_);
    stats_.last_discovery_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - probe_start)
            .count();
  }
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
  std::string probe_address;
  const bool ok = info.status == GatewayInfo::Status::kReady;
  check_unusable_ = true;
  if (ok) {
    probe_failures_ = 0;
    next_probe_ = now + options_.probe_interval;
    const bool back = !ready_ && last_good_ >= 0;  // a gateway that answered before was gone
    last_good_ = chosen_;
    const bool new_router = !before.info.address.empty() && !info.address.empty() &&
                            before.info.address != info.address;
    // The last address known from this router, also across an outage (a router that rebooted
    // with a new PPPoE address is the commonest change).
    std::string known = before.info.external_address;
    if (known.empty() && !new_router) {
      std::lock_guard lock(gateway_mu_);
      known = last_external_;
    }
    // PCP's ANNOUNCE carries no external address: the one known from the same router's leases
    // stands, rather than a "change" to nothing.
    if (info.external_address.empty() && !new_router) info.external_address = known;
    if (new_router) {
      // Another router answers: the leases were on the old one. Map everything on the new one.
      ForgetLeases(now, "a new gateway (" + before.info.address + " -> " + info.address +
                            "); mapping everything there");
    }
    if (!ready_ || new_router) RetryAllNow(now);  // back, or new: nothing waits out a backoff
    // Back after an outage: requests may have been made whose answers were lost; read the table.
    if (back) unconfirmed_requests_ = true;
    if (!ready_ || new_router || before.info.identity != info.identity) {
      Log(events, new_router ? event::kGatewayChanged : event::kGatewayFound, "",
          info.detail + ", external address " + info.external_address, now);
      // A gateway seen for the first time (or a new one): read its table before mapping.
      table_synced_ = false;
    }
    if (!new_router && !known.empty() && !info.external_address.empty() &&
        known != info.external_address) {
      // Told as one fact below, once the snapshot is in place.
      probe_address = info.external_address;
      info.external_address = known;
    }
  } else {
    ++probe_failures_;
    next_probe_ = Backoff(now, probe_failures_, options_.probe_retry_min, options_.probe_retry_max);
    if (ready_ || before.info.status != info.status || before.info.detail != info.detail) {
      Log(events, ready_ ? event::kGatewayLost : event::kGatewayNotFound, "",
          info.detail + "; trying again on its own", now);
    }
  }
  ready_ = ok;
  {
    std::lock_guard lock(gateway_mu_);
    const auto last_change = gateway_.last_address_change;
    gateway_ = GatewaySnapshot{info, reports, now, next_probe_, last_change};
    if (ok && !info.address.empty()) last_gateway_address_ = info.address;
  }
  if (!events.empty()) (void)store_.AppendEvents(std::move(events));
  if (!probe_address.empty()) NoteExternalAddress(probe_address, now, "a gateway probe");
  return ready_;
}

void Reconciler::MarkUnreachable(TimePoint now) {
  auto mappings = store_.ListMappings();
  if (!mappings) return;
  // No protocol answers: natpilot can no longer tell that the gateway holds anything, so nothing
  // stays `active` (the truth rule). The PCP nonce stays: mapping again when the gateway is back
  // renews what it still has.
  const std::string detail = "no usable gateway: " + Gateway().info.detail;
  std::vector<Mapping> changed;
  std::map<std::string, uint32_t> left;
  for (Mapping& m : *mappings) {
    if (m.released) continue;
    if (m.state == MappingState::kUnmapped && m.detail == detail) continue;
    if (HasLease(m)) ++left[m.device];
    m.state = MappingState::kUnmapped;
    m.protocol = GatewayProtocol::kNone;
    m.external_address.clear();
    m.detail = detail;
    m.next_attempt_at = now;
    changed.push_back(std::move(m));
  }
  std::vector<Event> events;
  for (const auto& [device, n] : left) {
    Log(events, event::kMappingUnconfirmed, device,
        std::to_string(n) +
            " leases no longer confirmed: the gateway stopped answering; mapping "
            "again when it is back",
        now);
  }
  if (!changed.empty()) (void)store_.SaveMappings(changed, std::move(events));
}

TimePoint Reconciler::NextWake(TimePoint now, TimePoint mappings_due) const {
  TimePoint next = next_probe_;
  if (!ready_ && last_good_ >= 0) next = std::min(next, next_outage_check_);
  {
    std::lock_guard lock(gateway_mu_);
    if (announce_deferred_) next = std::min(next, last_announce_ + options_.announce_min_interval);
  }
  if (ready_) {
    next = std::min(next, next_verify_);
    next = std::min(next, mappings_due);
    if (releases_left_) next = std::min(next, next_release_);
    if (!table_synced_) next = std::min(next, next_sync_);
  }
  if (ProbesPending()) next = std::min(next, now + std::chrono::milliseconds(250));
  if (probe_requested_ || rerun_ || verify_requested_ || announce_requested_) next = now;
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
  Log(events, event::kMappingReleased, "",
      std::to_string(changed.size()) + " leases deleted from the gateway at shutdown", now_());
  (void)store_.SaveMappings(changed, std::move(events));
}

void Reconciler::Start() {
  worker_.Start([this]() -> std::optional<Worker::Duration> {
    // Leases are wall-clock; the worker sleeps on the steady clock for the remaining span.
    const TimePoint next = RunOnce();
    return std::max(Worker::Duration::zero(),
                    std::chrono::duration_cast<Worker::Duration>(next - now_()));
  });
}

void Reconciler::Stop() { worker_.Stop(); }

void Reconciler::Wake() { worker_.Wake(); }

}  // namespace natpilot
