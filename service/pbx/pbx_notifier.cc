#include "pbx/pbx_notifier.h"

#include <spdlog/spdlog.h>

#include "core/event_kinds.h"
#include "core/text.h"
#include "mapping/static_rules.h"
#include "pbx/hook.h"

namespace natpilot {
namespace {

std::map<std::string, std::string> HookEnv(const v1::NatView& v, const PbxTarget& t) {
  std::string nets;
  for (const auto& n : v.local_nets()) nets += (nets.empty() ? "" : " ") + n;
  std::string transports;
  for (int x : v.sip_transports())
    transports +=
        (transports.empty() ? "" : " ") + std::string(x == v1::TRANSPORT_TCP ? "tcp" : "udp");
  return {
      {"NATPILOT_DEVICE", v.device()},
      {"NATPILOT_INTERNAL_ADDRESS", v.internal_address()},
      {"NATPILOT_EXTERNAL_ADDRESS", v.external_address()},
      {"NATPILOT_COMPLETE", v.complete() ? "1" : "0"},
      {"NATPILOT_SIP_PORT", std::to_string(v.sip_port())},
      {"NATPILOT_SIP_EXTERNAL_PORT", std::to_string(v.sip_external_port())},
      {"NATPILOT_SIP_TRANSPORTS", transports},
      {"NATPILOT_RTP_START", std::to_string(v.rtp().first())},
      {"NATPILOT_RTP_END", std::to_string(v.rtp().last())},
      {"NATPILOT_LOCAL_NETS", nets},
      {"NATPILOT_CONFIG_FILE", t.file},
      {"NATPILOT_DETAIL", v.detail()},
  };
}

// A hook's output is foreign text: one line, its last 300 bytes, valid UTF-8 without controls.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.size() > 300) s = "..." + s.substr(s.size() - 300);
  return SafeText(s, 400);
}

}  // namespace

PbxNotifier::PbxNotifier(Store& store, InputsFn inputs, std::vector<PbxTarget> targets, NowFn now)
    : store_(store),
      inputs_(std::move(inputs)),
      targets_(std::move(targets)),
      now_(std::move(now)) {}

PbxNotifier::~PbxNotifier() { Stop(); }

void PbxNotifier::OnEvents(const std::vector<Event>& events) {
  bool relevant = false;
  for (const Event& e : events) {
    if (e.kind.rfind("pbx.", 0) == 0) continue;  // our own
    for (const PbxTarget& t : targets_)
      relevant = relevant || e.device.empty() || e.device == t.device;
  }
  if (!relevant) return;
  worker_.Wake();
}

int PbxNotifier::RunOnce() {
  const NatViewInputs in = inputs_();
  int applied = 0;
  for (const PbxTarget& t : targets_) {
    auto view = BuildNatView(in, t.device);
    if (!view) continue;  // not registered (yet): nothing to tell
    std::string facts = NatViewFacts(*view);
    auto& last = last_facts_[t.device + "\n" + t.file];
    if (facts == last) continue;
    last = std::move(facts);
    Apply(t, *view);
    ++applied;
  }
  return applied;
}

void PbxNotifier::Apply(const PbxTarget& t, const v1::NatView& view) {
  std::vector<Event> events;
  const TimePoint now = now_();
  const std::string facts =
      "external " +
      (view.external_address().empty() ? std::string("unknown") : view.external_address()) +
      ", SIP " + std::to_string(view.sip_port()) + "->" + std::to_string(view.sip_external_port()) +
      ", RTP " + std::to_string(view.rtp().first()) + "-" + std::to_string(view.rtp().last()) +
      (view.complete() ? "" : " (not complete: " + view.detail() + ")");
  auto write = [&](const std::string& path, const std::string& text) {
    if (path.empty()) return;
    auto ok = WriteFileAtomically(path, text);
    events.push_back(Event{0, now, ok ? event::kPbxConfigWritten : event::kPbxConfigFailed,
                           t.device, "natpilotd",
                           ok ? "wrote " + path + ": " + facts : ok.error().message});
  };
  if (t.flavor == pbx::Flavor::kAsterisk) {
    write(t.file, pbx::AsteriskPjsip(view));
    write(t.rtp_file, pbx::AsteriskRtp(view));
  } else {
    write(t.file, pbx::Render(t.flavor, view));
  }
  if (!t.on_change.empty()) {
    const HookResult r = RunHook(t.on_change, HookEnv(view, t), t.hook_timeout);
    const bool ok = r.started && !r.timed_out && r.exit_code == 0;
    std::string msg = t.on_change[0] + ": ";
    if (!r.started)
      msg += SafeText(r.output, 400);
    else if (r.timed_out)
      msg += "killed after the " + std::to_string(t.hook_timeout.count()) + " s timeout";
    else
      msg += "exit " + std::to_string(r.exit_code);
    if (r.started && !r.output.empty()) msg += "; output: " + OneLine(r.output);
    events.push_back(
        Event{0, now, ok ? event::kPbxHookRan : event::kPbxHookFailed, t.device, "natpilotd", msg});
  }
  if (!events.empty()) (void)store_.AppendEvents(std::move(events));
}

void PbxNotifier::Start() {
  if (targets_.empty()) return;
  worker_.Start([this]() -> std::optional<Worker::Duration> {
    RunOnce();
    return std::nullopt;
  });
}

void PbxNotifier::Stop() { worker_.Stop(); }

}  // namespace natpilot
