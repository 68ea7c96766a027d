// PCP (RFC 6887) wire format as pure functions: requests to bytes, bytes to a checked response.
// No sockets, no clocks. Addresses travel as IPv4-mapped IPv6 on the wire; IPv4 only today.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/types.h"

namespace natpilot::pcp {

inline constexpr uint16_t kServerPort = 5351;
inline constexpr uint16_t kClientPort = 5350;  // ANNOUNCE is multicast to 224.0.0.1:5350
inline constexpr uint8_t kVersion = 2;
enum class Opcode : uint8_t { kAnnounce = 0, kMap = 1, kPeer = 2 };

// Result codes of RFC 6887 section 7.4.
enum class ResultCode : uint8_t {
  kSuccess = 0,
  kUnsuppVersion = 1,
  kNotAuthorized = 2,
  kMalformedRequest = 3,
  kUnsuppOpcode = 4,
  kUnsuppOption = 5,
  kMalformedOption = 6,
  kNetworkFailure = 7,
  kNoResources = 8,
  kUnsuppProtocol = 9,
  kUserExQuota = 10,
  kCannotProvideExternal = 11,
  kAddressMismatch = 12,
  kExcessiveRemotePeers = 13,
};
const std::error_category& PcpCategory();
inline std::error_code MakePcpError(ResultCode r) { return {static_cast<int>(r), PcpCategory()}; }

using Nonce = std::array<uint8_t, 12>;
using Ipv4 = std::array<uint8_t, 4>;

Result<Ipv4> ParseIpv4(std::string_view text);
std::string FormatIpv4(const Ipv4& a);

struct MapRequest {
  Ipv4 client{};  // the address the request is sent from
  Nonce nonce{};
  Transport transport = Transport::kUdp;
  uint16_t internal_port = 0;
  uint16_t suggested_external_port = 0;
  Ipv4 suggested_external{};  // 0.0.0.0: no preference
  uint32_t lifetime_s = 0;    // 0 deletes the mapping (with the same nonce)
  // THIRD_PARTY option (RFC 6887 section 13.1): the mapping is for this address, not the client.
  bool third_party = false;
  Ipv4 internal{};
};

std::vector<uint8_t> EncodeMapRequest(const MapRequest& request);
std::vector<uint8_t> EncodeAnnounceRequest(const Ipv4& client);

struct Response {
  Opcode opcode = Opcode::kAnnounce;
  ResultCode result = ResultCode::kSuccess;
  uint32_t lifetime_s = 0;
  uint32_t epoch_s = 0;
  // MAP only:
  Nonce nonce{};
  Transport transport = Transport::kUdp;
  uint16_t internal_port = 0;
  uint16_t external_port = 0;
  Ipv4 external{};
};

// Checks the version, the response bit, the length, and for MAP the payload; never reads past
// the buffer. A result code other than success is still a decoded response.
Result<Response> DecodeResponse(std::span<const uint8_t> bytes);

// True when `response` answers `request`: same opcode, and for MAP the same nonce, protocol and
// internal port (RFC 6887 section 11.3). A late duplicate reply to another request fails this.
bool Answers(const Response& response, const MapRequest& request);

// Retransmission delays of RFC 6887 section 8.1.1: RT = (1 + RAND) * IRT, then
// RT = (1 + RAND) * MIN(2 * RTprev, MRT), RAND uniform in [-0.1, +0.1]. `rand` gives values in
// [0, 1); at most `count` delays.
std::vector<double> RetransmitDelays(double irt_s, double mrt_s, size_t count,
                                     const std::function<double()>& rand);

// Server epoch validity (RFC 6887 section 8.5): false means the server lost its state (rebooted)
// and every mapping must be renewed.
class EpochTracker {
 public:
  bool Check(uint32_t server_epoch_s, double client_now_s);

 private:
  bool have_ = false;
  uint32_t prev_server_ = 0;
  double prev_client_ = 0;
};

}  // namespace natpilot::pcp
