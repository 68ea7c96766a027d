// Errors inside natpilotd: an error code (natpilot's own category, or a gateway protocol's) plus a
// message for people. tl::expected carries them; the API edge turns them into grpc::Status.
#pragma once

#include <string>
#include <system_error>
#include <tl/expected.hpp>
#include <utility>

namespace natpilot {

enum class Errc {
  kInvalidArgument = 1,
  kNotFound,
  kAlreadyExists,
  kConflict,
  kFailedPrecondition,
  kUnavailable,
  kInternal,
  kPermissionDenied,
  kResourceExhausted,
  kUnauthenticated,
};
const std::error_category& NatpilotCategory();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), NatpilotCategory()}; }

// UPnP IGD errors: the SOAP error codes of the WANIPConnection service (402, 606, 7xx) and
// miniupnpc's own negative UPNPCOMMAND_* codes (transport failures, bad answers).
const std::error_category& UpnpCategory();
inline std::error_code MakeUpnpError(int code) { return {code, UpnpCategory()}; }
namespace upnp {
inline constexpr int kInvalidArgs = 402;
inline constexpr int kActionNotAuthorized = 606;
inline constexpr int kNoSuchEntryInArray = 714;
inline constexpr int kConflictInMappingEntry = 718;
inline constexpr int kSamePortValuesRequired = 724;
inline constexpr int kOnlyPermanentLeasesSupported = 725;
inline constexpr int kNoPortMapsAvailable = 728;
}  // namespace upnp

// What a gateway's "no" to a mapping means, whatever protocol said it. Each protocol's category
// maps its codes onto these (`e.code == Refusal::kTableFull`); policy code reads the conditions,
// never protocol numbers. A refusal is policy, not a failure: the mapping goes to static rules.
enum class Refusal {
  kNotAuthorized = 1,  // not for this host or option (UPnP 606; PCP NOT_AUTHORIZED, UNSUPP_OPTION)
  kPortTaken,          // another host holds the external port (UPnP 718; miniupnpd's secure mode
                       // also answers 718 for a mapping to another host: read the entry to know)
  kTableFull,          // no room in the gateway's table (UPnP 728; PCP NO_RESOURCES)
};
const std::error_category& RefusalCategory();
inline std::error_condition make_error_condition(Refusal r) {
  return {static_cast<int>(r), RefusalCategory()};
}
// Any of them.
bool IsRefusal(const std::error_code& code);

struct Error {
  std::error_code code;
  std::string message;
  // Said only to an admin (it names other devices): see ForAdmin. A device token is told the
  // message alone.
  std::string admin_note = {};
};

// The error as an admin is told it: the message with the admin note.
inline Error ForAdmin(Error e) {
  if (!e.admin_note.empty()) e.message += " (" + std::exchange(e.admin_note, {}) + ")";
  return e;
}

template <typename T>
using Result = tl::expected<T, Error>;
// Every error classified once, for both edges (gRPC status, HTTP status): natpilot's own codes as
// they are; any other category (a gateway's answer, a system call) is kUnavailable: something
// natpilotd depends on failed, not the caller's request.
Errc Classify(const Error& e);

inline tl::unexpected<Error> Fail(std::error_code code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}
inline tl::unexpected<Error> Fail(Errc code, std::string message) {
  return Fail(make_error_code(code), std::move(message));
}

}  // namespace natpilot

template <>
struct std::is_error_code_enum<natpilot::Errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<natpilot::Refusal> : std::true_type {};
