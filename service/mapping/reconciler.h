// Turns intent (devices' port plans, in the store) into leases on the gateway, renews them before
// they expire, deletes what nothing wants, and records every outcome in the store.
//
// RunOnce() does one pass at the injected clock's "now" and says when the next pass is due; tests
// drive it directly. Start() runs passes on a thread of its own, woken early by Wake().
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "core/worker.h"
#include "mapping/gateway_state.h"
#include "mapping/reconciler_options.h"
#include "portmap/port_mapper.h"
#include "portmap/prober.h"
#include "store/store.h"

namespace natpilot {

class Reconciler : public GatewayState {
 public:
  using NowFn = std::function<TimePoint()>;
  using RandomFn = std::function<double()>;  // uniform in [0, 1)

  // mappers in preference order (most preferred first).
  Reconciler(Store& store, std::vector<PortMapper*> mappers, ReconcilerOptions options, NowFn now,
             RandomFn random = nullptr);
  Reconciler(Store& store, PortMapper& mapper, ReconcilerOptions options, NowFn now,
             RandomFn random = nullptr)
      : Reconciler(store, std::vector<PortMapper*>{&mapper}, options, now, std::move(random)) {}
  ~Reconciler() override;

  // One pass; returns when the next one is due.
  TimePoint RunOnce();
  GatewaySnapshot Gateway() const override;
  // The gateway's external address alone (Gateway() copies every probe report: not per mapping).
  std::string ExternalAddress() const override;
  GatewayStats Stats() const override;
  // Probe the gateway again at the next pass.
  void RequestProbe() override;
  // An unsolicited PCP ANNOUNCE, or a NAT-PMP public address announcement (RFC 6886 3.2.1: sent
  // after a restart and when the external address changes), arrived: if it is from the gateway
  // in use, check it at once. What an announcement says is not taken on trust (any LAN host can
  // send one): the check asks the gateway its external address and renews PCP/NAT-PMP leases.
  void AnnounceFrom(const std::string& sender, const std::string& what = "PCP ANNOUNCE");
  // Another source says the external address may have changed (a UPnP event, the doctor's STUN
  // answer): the same check at once, rate-limited with the announcements.
  void CheckExternalAddress(const std::string& why) override;

  // At shutdown when configured: deletes every held lease from the gateway (the intent stays, so
  // the next start maps again). Gives up at the deadline; what is left expires on the gateway.
  void ReleaseLeasesForShutdown(std::chrono::steady_clock::time_point deadline);

  void Start();
  void Stop();
  void Wake();

  // Called at the end of every pass (e.g. to refresh the static rule files). Set before Start().
  void SetAfterPass(std::function<void()> hook) { after_pass_ = std::move(hook); }

  // The description that tags this installation's gateway entries for a device.
  std::string Tag(std::string_view device) const;

 private:
  struct Tally;
  bool ProbeIfDue(TimePoint now);
  void SyncWithGatewayTable(TimePoint now);
  void ProcessReleases(TimePoint now);
  // Maps and renews what is due; returns when the earliest remaining mapping is due.
  TimePoint ProcessMappings(TimePoint now);
  bool MapOne(Mapping& m, TimePoint now, Tally& tally);
  Result<Lease> TryCandidates(Mapping& m, const std::vector<PortMapper*>& candidates,
                              std::vector<Error>& refusals);
  // Usable mappers that can map for this mapping, preferred first (a held lease: its own).
  std::vector<PortMapper*> Candidates(const Mapping& m) const;
  PortMapper* ByProtocol(GatewayProtocol protocol) const;
  bool ProbesPending() const;
  void CheckStateLoss(TimePoint now);
  void Verify(TimePoint now);
  void ForgetLeases(TimePoint now, const std::string& why);
  // Leases of protocols whose probe finished without a usable gateway leave `active` at once.
  void ForgetUnusable(TimePoint now);
  // Mappings without a lease are due now (the gateway is back, or new). With `static_rules`, those
  // provided by static rules too: a protocol that answers now may serve what none could before.
  void RetryAllNow(TimePoint now, bool static_rules = false);
  // An ANNOUNCE (the gateway restarted, or says so): read its table, renew every PCP and NAT-PMP
  // lease at once (a renewal re-creates a lost mapping).
  // `announced`: a datagram from the gateway (not a UPnP event or a STUN answer).
  void OnAnnounce(TimePoint now, bool announced);
  void OutageCheck(TimePoint now);
  // A check of the gateway at the next pass, at most one per announce_min_interval.
  // `what` completes "the check after ..."; `announcement`: a PCP/NAT-PMP datagram.
  void RequestCheck(const std::string& told, const std::string& what, bool announcement);
  // A check to make in this pass (one that arrived, or a coalesced one due): what asked for it, and
  // whether it was a PCP/NAT-PMP datagram from the gateway.
  struct Check {
    std::string what;
    bool announcement = false;
  };
  std::optional<Check> TakeAnnounce(TimePoint now);
  // Whether the UPnP table shows this protocol's leases too (learnt by reading them back).
  bool ListedByUpnp(GatewayProtocol protocol) const;
  Result<void> ProcessRelease(const Release& r, TimePoint now);
  // One fact, whatever told it: a change moves every lease's external address, and one event
  // says old -> new and how it was noticed (the NAT views, the [[pbx]] files and hooks follow).
  void NoteExternalAddress(const std::string& address, TimePoint now,
                           const std::string& noticed_by);
  // A refused mapping: a real conflict stays failed; a gateway that will not map for this address
  // or port hands the mapping to static rules.
  // Returns false when the pass must stop (the device's plan changed under it).
  bool Refused(Mapping& m, const std::vector<Error>& refusals, TimePoint now, Tally& tally);
  bool MoveRtpBlock(const Mapping& m, const std::string& holder, TimePoint now);
  bool ForcedStatic(const Mapping& m) const;
  void MarkUnreachable(TimePoint now);
  TimePoint NextWake(TimePoint now, TimePoint mappings_due) const;
  TimePoint Backoff(TimePoint now, uint32_t failures, Seconds min, Seconds max) const;
  void Log(std::vector<Event>& events, std::string kind, std::string device, std::string message,
           TimePoint now) const;

  Store& store_;
  std::vector<PortMapper*> mappers_;
  Prober prober_;
  int chosen_ = -1;
  ReconcilerOptions options_;
  NowFn now_;
  RandomFn random_;
  std::function<void()> after_pass_;
  std::string tag_prefix_;

  mutable std::mutex gateway_mu_;
  GatewaySnapshot gateway_;
  GatewayStats stats_;  // under gateway_mu_
  bool ready_ = false;
  std::atomic<bool> probe_requested_{true};
  std::atomic<bool> verify_requested_{false};
  bool table_synced_ = false;
  uint32_t sync_failures_ = 0;
  TimePoint next_sync_{};
  bool releases_left_ = false;
  TimePoint next_verify_{};
  bool rerun_ = false;  // the pass stopped early on purpose; run again at once
  std::optional<std::pair<Mapping, std::string>> pending_move_;  // RTP port taken by (holder)
  uint32_t probe_failures_ = 0;
  TimePoint next_probe_{};
  TimePoint next_release_{};
  // Per queued release (by id): failures and when to try again, so one the gateway keeps refusing
  // does not hold up the others.
  std::map<int64_t, std::pair<uint32_t, TimePoint>> release_backoff_;
  bool unconfirmed_requests_ =
      false;                     // a request went unanswered: read the table at the next check
  bool check_unusable_ = false;  // after a probe, until every protocol's probe has finished
  // Protocols that answered a probe and then did not (a lossy minute can time a PCP probe out
  // while UPnP over TCP gets through): probed again soon, on a short backoff, a few times,
  // rather than at probe_interval; their queued releases and the mappings they held wait on it.
  std::set<GatewayProtocol> answered_, missing_;
  uint32_t missing_probes_ = 0;
  std::string announce_what_;     // what the last announcement was (under gateway_mu_)
  bool announce_probes_ = false;  // it was a PCP/NAT-PMP datagram (under gateway_mu_)
  std::string deferred_what_;     // the last request within the interval (under gateway_mu_)
  bool deferred_probes_ = false;  // one of them was a datagram (under gateway_mu_)
  std::string last_external_;  // the last external address known, kept across outages (gateway_mu_)
  std::string check_reason_;   // why this pass checks the gateway, for the events it logs
  std::set<GatewayProtocol> listed_by_upnp_;
  std::atomic<bool> announce_requested_{false};
  TimePoint last_announce_{};         // under gateway_mu_
  bool announce_deferred_ = false;    // under gateway_mu_: one more check at the interval's end
  std::string last_gateway_address_;  // under gateway_mu_: the last usable gateway's address
  int last_good_ = -1;                // the last chosen mapper, for the outage check
  TimePoint next_outage_check_{};

  Worker worker_{"reconciler pass", options_.retry_min};  // last: stopped before the rest goes
};

}  // namespace natpilot
