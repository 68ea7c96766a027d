// libFuzzer target for the PCP response decoder: bytes from the network must never crash it or
// make it read past the buffer. Built with clang by scripts/fuzz.sh; with any compiler,
// replay_main.cc runs the seed corpus and bounded random mutations of it as a ctest test.
#include <cstddef>
#include <cstdint>
#include <span>

#include "portmap/pcp_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto response = natpilot::pcp::DecodeResponse(std::span<const uint8_t>(data, size));
  if (response) {
    natpilot::pcp::MapRequest request;
    request.nonce = response->nonce;
    (void)natpilot::pcp::Answers(*response, request);
    (void)natpilot::pcp::FormatIpv4(response->external);
    (void)natpilot::pcp::MakePcpError(response->result).message();
  }
  return 0;
}
