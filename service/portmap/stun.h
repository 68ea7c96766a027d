// STUN (RFC 5389) Binding requests: what public address a server on the internet sees us as.
// The codec is pure (bytes in, struct out) and fuzzed; Query does the UDP exchange.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace natpilot::stun {

using TransactionId = std::array<uint8_t, 12>;

struct Mapped {
  std::string address;  // IPv4, dotted
  uint16_t port = 0;
};

std::vector<uint8_t> EncodeBindingRequest(const TransactionId& id);
// A Binding success response to our request: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS (RFC 3489
// servers). Anything else (another transaction, an error response, a malformed message) fails.
Result<Mapped> DecodeBindingResponse(std::span<const uint8_t> bytes, const TransactionId& id);

// Sends Binding requests to "HOST:PORT" (retransmitted after 500 ms, 1 s, ... as RFC 5389 7.2.1
// says) until an answer or the timeout.
Result<Mapped> Query(const std::string& server, std::chrono::milliseconds timeout);

}  // namespace natpilot::stun
