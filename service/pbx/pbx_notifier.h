// Tells PBXes and ATAs when their NAT view changes: for each configured [[pbx]] device, writes its
// configuration file(s) atomically and runs its on-change hook, recording both as events. Runs on
// its own thread, woken by events, so a slow or hanging hook never stalls the daemon.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/nat_view.h"
#include "core/worker.h"
#include "pbx_config.h"
#include "store/store.h"

namespace natpilot {

struct PbxTarget {
  std::string device;
  pbx::Flavor flavor = pbx::Flavor::kJson;
  std::string file;                    // "" = no file; Asterisk: the pjsip part
  std::string rtp_file;                // Asterisk only: rtp.conf's part; "" = none
  std::vector<std::string> on_change;  // argv; empty = no hook
  Seconds hook_timeout{30};
};

class PbxNotifier {
 public:
  using InputsFn = std::function<NatViewInputs()>;
  using NowFn = std::function<TimePoint()>;
  PbxNotifier(Store& store, InputsFn inputs, std::vector<PbxTarget> targets, NowFn now);
  ~PbxNotifier();
  // From the event bus: wakes the worker when an event may change a target's view.
  void OnEvents(const std::vector<Event>& events);
  // One pass: every target whose view's facts changed gets its files and hook. Returns how many.
  int RunOnce();
  void Start();
  void Stop();

 private:
  static constexpr Seconds kRetryAfter{5};
  void Apply(const PbxTarget& target, const v1::NatView& view);
  Store& store_;
  InputsFn inputs_;
  std::vector<PbxTarget> targets_;
  NowFn now_;
  std::map<std::string, std::string> last_facts_;  // device -> facts written
  // Runs a pass at start and whenever an event made the views dirty; a failed pass is tried again
  // after kRetryAfter, so a change is not lost when no further event comes. Last: stopped first.
  Worker worker_{"pbx notifier: a pass", kRetryAfter};
};

}  // namespace natpilot
