#include "core/error.h"

#include <string>

namespace natpilot {
namespace {

class NatpilotCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "natpilot"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kInvalidArgument:
        return "invalid argument";
      case Errc::kNotFound:
        return "not found";
      case Errc::kAlreadyExists:
        return "already exists";
      case Errc::kConflict:
        return "conflict";
      case Errc::kFailedPrecondition:
        return "failed precondition";
      case Errc::kUnavailable:
        return "unavailable";
      case Errc::kInternal:
        return "internal error";
      case Errc::kPermissionDenied:
        return "permission denied";
      case Errc::kResourceExhausted:
        return "resource exhausted";
      case Errc::kUnauthenticated:
        return "unauthenticated";
    }
    return "unknown natpilot error " + std::to_string(ev);
  }
};

class UpnpCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "upnp"; }
  std::string message(int ev) const override {
    switch (ev) {
      // miniupnpc's own codes (upnpcommands.h).
      case -1:
        return "UPnP gateway answered with an unexpected error (UPNPCOMMAND_UNKNOWN_ERROR)";
      case -2:
        return "invalid arguments for a UPnP command (UPNPCOMMAND_INVALID_ARGS)";
      case -3:
        return "no answer from the UPnP gateway (HTTP error)";
      case -4:
        return "UPnP gateway sent an answer that could not be parsed";
      case -5:
        return "out of memory while talking to the UPnP gateway";
      // WANIPConnection SOAP errors (UPnP IGD specification).
      case 401:
        return "401 InvalidAction";
      case 402:
        return "402 InvalidArgs: the gateway refused a parameter (often the lease time)";
      case 501:
        return "501 ActionFailed";
      case 606:
        return "606 ActionNotAuthorized: the gateway does not allow this mapping";
      case 714:
        return "714 NoSuchEntryInArray: no such mapping on the gateway";
      case 715:
        return "715 WildCardNotPermittedInSrcIP";
      case 716:
        return "716 WildCardNotPermittedInExtPort";
      case 718:
        return "718 ConflictInMappingEntry: the external port is held by another host, or the "
               "gateway only maps ports to the host that asks (secure mode)";
      case 724:
        return "724 SamePortValuesRequired: the gateway needs external = internal port";
      case 725:
        return "725 OnlyPermanentLeasesSupported: the gateway takes only lease 0";
      case 726:
        return "726 RemoteHostOnlySupportsWildcard";
      case 727:
        return "727 ExternalPortOnlySupportsWildcard";
      case 728:
        return "728 NoPortMapsAvailable: the gateway's mapping table is full";
      case 729:
        return "729 ConflictWithOtherMechanisms";
      case 732:
        return "732 WildCardNotPermittedInIntPort";
      default:
        return "UPnP error " + std::to_string(ev);
    }
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (ev) {
      case upnp::kActionNotAuthorized:
        return Refusal::kNotAuthorized;
      case upnp::kConflictInMappingEntry:
        return Refusal::kPortTaken;
      case upnp::kNoPortMapsAvailable:
        return Refusal::kTableFull;
      default:
        return {ev, *this};
    }
  }
};

class RefusalCategoryImpl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "refusal"; }
  std::string message(int ev) const override {
    switch (static_cast<Refusal>(ev)) {
      case Refusal::kNotAuthorized:
        return "the gateway does not allow this mapping";
      case Refusal::kPortTaken:
        return "the external port is held by another host";
      case Refusal::kTableFull:
        return "the gateway's mapping table is full";
    }
    return "refusal " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& NatpilotCategory() {
  static const NatpilotCategoryImpl category;
  return category;
}
const std::error_category& UpnpCategory() {
  static const UpnpCategoryImpl category;
  return category;
}

const std::error_category& RefusalCategory() {
  static const RefusalCategoryImpl category;
  return category;
}

Errc Classify(const Error& e) {
  if (e.code.category() == NatpilotCategory()) return static_cast<Errc>(e.code.value());
  return Errc::kUnavailable;
}

bool IsRefusal(const std::error_code& code) {
  return code == Refusal::kNotAuthorized || code == Refusal::kPortTaken ||
         code == Refusal::kTableFull;
}

}  // namespace natpilot
