// Every kind of event natpilotd records (Event::kind), in one place: what each means. Events are
// the history `natpilot events` shows, what the status page and WatchEvents stream, and what the
// PBX notifier and the doctor read back. The strings are part of the API (scripts grep them):
// never rename one.
#pragma once

namespace natpilot::event {

// Devices (the registry, the identity watch).
inline constexpr char kDeviceRegistered[] = "device.registered";  // added; its mappings are wanted
inline constexpr char kDeviceUpdated[] = "device.updated";  // kind, address, plan or text changed
inline constexpr char kDeviceRemoved[] = "device.removed";  // gone; its leases are being deleted
inline constexpr char kDeviceTokenReset[] =
    "device.token-reset";  // a new API token; the old one is void
inline constexpr char kDeviceIdentified[] =
    "device.identified";  // its MAC learnt from the neighbour table
inline constexpr char kDeviceSuspended[] =
    "device.suspended";                                     // another host (or none) at its address
inline constexpr char kDeviceResumed[] = "device.resumed";  // its MAC answers again
inline constexpr char kDeviceIdentityForgotten[] =
    "device.identity-forgotten";  // an admin accepted a new host
inline constexpr char kDeviceRtpMoved[] =
    "device.rtp-moved";  // its RTP block moved off a taken port

// Mappings (the reconciler): the state of the device's forwards on the gateway.
inline constexpr char kMappingActive[] = "mapping.active";  // granted (or renewed after a loss)
inline constexpr char kMappingFailed[] = "mapping.failed";  // refused or not renewed; retried
inline constexpr char kMappingStaticRule[] =
    "mapping.static-rule";  // the gateway refuses: static rules
inline constexpr char kMappingUnconfirmed[] =
    "mapping.unconfirmed";  // asked, answer lost: not shown active
inline constexpr char kMappingAdopted[] =
    "mapping.adopted";                                  // own live entries taken back at start
inline constexpr char kMappingLost[] = "mapping.lost";  // the gateway no longer holds them
inline constexpr char kMappingOrphans[] = "mapping.orphans";  // own entries nobody wants: queued
inline constexpr char kMappingReleaseRequested[] =
    "mapping.release-requested";                                // released through the API
inline constexpr char kMappingReleased[] = "mapping.released";  // entries deleted from the gateway
inline constexpr char kMappingReleaseFailed[] =
    "mapping.release-failed";  // a deletion refused; kept queued

// The gateway (the reconciler's monitor).
inline constexpr char kGatewayFound[] = "gateway.found";
inline constexpr char kGatewayChanged[] = "gateway.changed";  // another gateway or protocol
inline constexpr char kGatewayLost[] = "gateway.lost";
inline constexpr char kGatewayNotFound[] = "gateway.not-found";
inline constexpr char kGatewayStateLost[] =
    "gateway.state-lost";  // it lost its table (epoch, entries)
inline constexpr char kGatewayEntriesMissing[] = "gateway.entries-missing";  // read back, not there
inline constexpr char kGatewayRouteChanged[] = "gateway.route-changed";
inline constexpr char kGatewayExternalAddress[] = "gateway.external-address";  // first learnt
inline constexpr char kGatewayExternalAddressChanged[] = "gateway.external-address-changed";

// What natpilotd writes for others.
inline constexpr char kRulesWritten[] = "rules.written";  // static rule files brought current
inline constexpr char kRulesWriteFailed[] = "rules.write-failed";
inline constexpr char kPbxConfigWritten[] = "pbx.config-written";  // a [[pbx]] file
inline constexpr char kPbxConfigFailed[] = "pbx.config-failed";
inline constexpr char kPbxHookRan[] = "pbx.hook-ran";  // a [[pbx]] on_change command
inline constexpr char kPbxHookFailed[] = "pbx.hook-failed";

}  // namespace natpilot::event
