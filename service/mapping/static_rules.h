// The static-rule fallback: which devices need forwards an admin applies on the router, and the
// rule files natpilotd keeps current in a folder.
#pragma once

#include <functional>
#include <string>

#include "rules.h"
#include "store/store.h"

namespace natpilot {

struct StaticRulesOptions {
  rules::RouterParams params;
  std::string folder;  // where the current files are written; empty: not written
};

// Devices with a mapping in static-rule or unmapped state (not released by an admin), or every
// device when all_devices.
// An error when the mappings cannot be read: "no device needs rules" would overwrite good files.
Result<rules::RulesInput> StaticRulesInput(const Store& store, bool all_devices, TimePoint now);

// Writes path via a temporary file, fsync and rename, so a reader never sees half a file.
Result<void> WriteFileAtomically(const std::string& path, const std::string& text);

class RulesWriter {
 public:
  using NowFn = std::function<TimePoint()>;
  RulesWriter(Store& store, StaticRulesOptions options, NowFn now);
  // Rewrites the files when the forwarded devices or their plans changed; records an event.
  // Never throws: failures are logged and become an event.
  void Refresh();

 private:
  Store& store_;
  StaticRulesOptions options_;
  NowFn now_;
  std::string last_fingerprint_;
};

}  // namespace natpilot
