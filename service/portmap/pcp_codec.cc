#include "portmap/pcp_codec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace natpilot::pcp {
namespace {

class PcpCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pcp"; }
  std::string message(int ev) const override {
    switch (static_cast<ResultCode>(ev)) {
      case ResultCode::kSuccess:
        return "SUCCESS";
      case ResultCode::kUnsuppVersion:
        return "UNSUPP_VERSION: the server does not speak PCP version 2";
      case ResultCode::kNotAuthorized:
        return "NOT_AUTHORIZED: the server refused (third-party mappings not allowed, or another "
               "nonce)";
      case ResultCode::kMalformedRequest:
        return "MALFORMED_REQUEST";
      case ResultCode::kUnsuppOpcode:
        return "UNSUPP_OPCODE";
      case ResultCode::kUnsuppOption:
        return "UNSUPP_OPTION: the server does not support an option (e.g. THIRD_PARTY)";
      case ResultCode::kMalformedOption:
        return "MALFORMED_OPTION";
      case ResultCode::kNetworkFailure:
        return "NETWORK_FAILURE: the server has no external connectivity";
      case ResultCode::kNoResources:
        return "NO_RESOURCES: the server's mapping table is full";
      case ResultCode::kUnsuppProtocol:
        return "UNSUPP_PROTOCOL";
      case ResultCode::kUserExQuota:
        return "USER_EX_QUOTA: this client has too many mappings";
      case ResultCode::kCannotProvideExternal:
        return "CANNOT_PROVIDE_EXTERNAL: the suggested external port or address is not available";
      case ResultCode::kAddressMismatch:
        return "ADDRESS_MISMATCH: the client address in the request is not the packet's source";
      case ResultCode::kExcessiveRemotePeers:
        return "EXCESSIVE_REMOTE_PEERS";
    }
    return "PCP result " + std::to_string(ev);
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<ResultCode>(ev)) {
      case ResultCode::kNotAuthorized:
      case ResultCode::kUnsuppOption:
        return Refusal::kNotAuthorized;  // THIRD_PARTY (RFC 6887 13.1)
      case ResultCode::kNoResources:
        return Refusal::kTableFull;
      default:
        return {ev, *this};
    }
  }
};

constexpr size_t kHeaderSize = 24;
constexpr size_t kMapPayloadSize = 36;
constexpr uint8_t kOptionThirdParty = 1;

void Put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void Put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
// IPv4-mapped IPv6: ::ffff:a.b.c.d
void PutAddress(std::vector<uint8_t>& b, size_t at, const Ipv4& a) {
  b[at + 10] = 0xff;
  b[at + 11] = 0xff;
  std::copy(a.begin(), a.end(), b.begin() + static_cast<long>(at + 12));
}
uint16_t Get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
uint32_t Get32(std::span<const uint8_t> b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

std::vector<uint8_t> Header(Opcode op, uint32_t lifetime, const Ipv4& client, size_t payload) {
  std::vector<uint8_t> b(kHeaderSize + payload, 0);
  b[0] = kVersion;
  b[1] = static_cast<uint8_t>(op);
  Put32(b, 4, lifetime);
  PutAddress(b, 8, client);
  return b;
}

}  // namespace

const std::error_category& PcpCategory() {
  static const PcpCategoryImpl category;
  return category;
}

Result<Ipv4> ParseIpv4(std::string_view text) {
  in_addr a{};
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return Fail(Errc::kInvalidArgument, "'" + s + "' is not an IPv4 address");
  }
  Ipv4 out;
  std::memcpy(out.data(), &a.s_addr, 4);
  return out;
}

std::string FormatIpv4(const Ipv4& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, a.data(), buf, sizeof buf);
  return buf;
}

std::vector<uint8_t> EncodeMapRequest(const MapRequest& r) {
  const size_t option = r.third_party ? 4 + 16 : 0;
  auto b = Header(Opcode::kMap, r.lifetime_s, r.client, kMapPayloadSize + option);
  std::copy(r.nonce.begin(), r.nonce.end(), b.begin() + kHeaderSize);
  b[kHeaderSize + 12] = r.transport == Transport::kTcp ? 6 : 17;  // IANA protocol number
  Put16(b, kHeaderSize + 16, r.internal_port);
  Put16(b, kHeaderSize + 18, r.suggested_external_port);
  const Ipv4 zero{};
  if (r.suggested_external != zero) PutAddress(b, kHeaderSize + 20, r.suggested_external);
  if (r.third_party) {
    const size_t at = kHeaderSize + kMapPayloadSize;
    b[at] = kOptionThirdParty;
    Put16(b, at + 2, 16);
    PutAddress(b, at + 4, r.internal);
  }
  return b;
}

std::vector<uint8_t> EncodeAnnounceRequest(const Ipv4& client) {
  return Header(Opcode::kAnnounce, 0, client, 0);
}

Result<Response> DecodeResponse(std::span<const uint8_t> b) {
  if (b.size() < kHeaderSize) {
    return Fail(Errc::kInvalidArgument, "PCP response of " + std::to_string(b.size()) +
                                            " bytes is shorter than the 24-byte header");
  }
  if (b.size() > 1100 || b.size() % 4 != 0) {
    return Fail(Errc::kInvalidArgument, "PCP response length " + std::to_string(b.size()) +
                                            " is not a multiple of 4 up to 1100");
  }
  if (b[0] != kVersion) {
    return Fail(Errc::kInvalidArgument,
                "PCP response has version " + std::to_string(b[0]) + ", not 2");
  }
  if ((b[1] & 0x80) == 0) return Fail(Errc::kInvalidArgument, "a PCP request, not a response");
  Response r;
  const uint8_t op = b[1] & 0x7f;
  if (op > 1)
    return Fail(Errc::kInvalidArgument, "PCP opcode " + std::to_string(op) + " is not handled");
  r.opcode = static_cast<Opcode>(op);
  if (b[3] > static_cast<uint8_t>(ResultCode::kExcessiveRemotePeers)) {
    return Fail(Errc::kInvalidArgument, "PCP result code " + std::to_string(b[3]) + " is unknown");
  }
  r.result = static_cast<ResultCode>(b[3]);
  r.lifetime_s = Get32(b, 4);
  r.epoch_s = Get32(b, 8);
  if (r.opcode == Opcode::kMap) {
    if (b.size() < kHeaderSize + kMapPayloadSize) {
      // Error responses may omit the payload only if the request could not be parsed at all.
      if (r.result == ResultCode::kSuccess) {
        return Fail(Errc::kInvalidArgument, "PCP MAP response without its 36-byte payload");
      }
      return r;
    }
    const auto p = b.subspan(kHeaderSize);
    std::copy(p.begin(), p.begin() + 12, r.nonce.begin());
    const uint8_t proto = p[12];
    if (proto != 6 && proto != 17) {
      return Fail(Errc::kInvalidArgument, "PCP MAP response for protocol " + std::to_string(proto));
    }
    r.transport = proto == 6 ? Transport::kTcp : Transport::kUdp;
    r.internal_port = Get16(p, 16);
    r.external_port = Get16(p, 18);
    const bool mapped =
        std::all_of(p.begin() + 20, p.begin() + 30, [](uint8_t x) { return x == 0; }) &&
        p[30] == 0xff && p[31] == 0xff;
    if (r.result == ResultCode::kSuccess && !mapped) {
      return Fail(Errc::kInvalidArgument, "PCP MAP response with a non-IPv4 external address");
    }
    std::copy(p.begin() + 32, p.begin() + 36, r.external.begin());
  }
  return r;
}

bool Answers(const Response& response, const MapRequest& request) {
  return response.opcode == Opcode::kMap && response.nonce == request.nonce &&
         response.transport == request.transport && response.internal_port == request.internal_port;
}

std::vector<double> RetransmitDelays(double irt_s, double mrt_s, size_t count,
                                     const std::function<double()>& rand) {
  std::vector<double> out;
  double rt = 0;
  for (size_t i = 0; i < count; ++i) {
    const double jitter = 1.0 + (rand() * 0.2 - 0.1);
    rt = i == 0 ? jitter * irt_s : jitter * std::min(2 * rt, mrt_s);
    out.push_back(rt);
  }
  return out;
}

bool EpochTracker::Check(uint32_t server, double client) {
  if (!have_) {
    have_ = true;
    prev_server_ = server;
    prev_client_ = client;
    return true;
  }
  bool valid = true;
  if (server + 1 < prev_server_) {
    valid = false;  // the server's time went backwards: it restarted
  } else {
    const double client_delta = client - prev_client_;
    const double server_delta = double(server) - double(prev_server_);
    valid = !(client_delta + 2 < server_delta - server_delta / 16) &&
            !(server_delta + 2 < client_delta - client_delta / 16);
  }
  prev_server_ = server;
  prev_client_ = client;
  return valid;
}

}  // namespace natpilot::pcp
