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

// The routers on the way to "HOST:PORT", as traceroute finds them: Binding requests with a TTL of
// 1, 2, ... and the ICMP time-exceeded answers read from the socket's error queue (no privileges
// needed). One address per hop before the server ("" where a hop did not answer); stops at the
// server or after max_hops. Hop 1 is the gateway; a private or 100.64.0.0/10 address after it is
// another NAT.
Result<std::vector<std::string>> PathTo(const std::string& server, int max_hops,
                                        std::chrono::milliseconds per_hop);

}  // namespace natpilot::stun
