// libFuzzer target for STUN Binding responses (the doctor's STUN client reads them from the
// internet): any bytes give an address or an error, never a crash or a read past the buffer.
#include <cstddef>
#include <cstdint>
#include <span>

#include "portmap/stun.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The transaction id the answer must carry: the bytes where it sits, so that some inputs match.
  natpilot::stun::TransactionId id{};
  for (size_t i = 0; i < id.size() && 8 + i < size; ++i) id[i] = data[8 + i];
  auto mapped = natpilot::stun::DecodeBindingResponse(std::span<const uint8_t>(data, size), id);
  if (mapped) (void)mapped->address.size();
  return 0;
}
