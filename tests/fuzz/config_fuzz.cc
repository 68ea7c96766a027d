// libFuzzer target for the config parser: any file content must give a config or a clear error
// (std::runtime_error), never a crash, a hang or another exception.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  natpilot::Config config;
  try {
    natpilot::LoadConfigText(std::string_view(reinterpret_cast<const char*>(data), size),
                             "fuzz.toml", config);
    natpilot::ValidateConfig(config);
  } catch (const std::runtime_error&) {
    // A refused config: what the daemon prints before it exits.
  }
  return 0;
}
