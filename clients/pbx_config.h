// PBX configuration from a device's NAT view: what Asterisk (res_pjsip + rtp.conf), FreeSWITCH or
// anything else (JSON) must be told so SIP and SDP carry the external address and mapped ports.
// Pure: a view in, text out. Used by `natpilot pbx-config` and by natpilotd's [[pbx]] files.
#pragma once

#include <string>
#include <string_view>

#include "natpilot/v1/natpilot.pb.h"

namespace natpilot::pbx {

enum class Flavor { kAsterisk, kFreeswitch, kJson };
// "asterisk", "freeswitch", "json".
bool ParseFlavor(std::string_view text, Flavor* out);

// Asterisk: pjsip transports (one per SIP transport) with external_media_address,
// external_signaling_address, external_signaling_port and local_net, for pjsip.conf.
std::string AsteriskPjsip(const v1::NatView& view);
// Asterisk: rtp.conf's [general] rtpstart/rtpend, exactly the mapped RTP range.
std::string AsteriskRtp(const v1::NatView& view);
// FreeSWITCH: sip profile params (ext-rtp-ip, ext-sip-ip, sip-port) and switch.conf.xml's
// rtp-start-port/rtp-end-port, as an X-PRE-PROCESS include.
std::string Freeswitch(const v1::NatView& view);
// The same facts as a small, stable JSON object.
std::string Json(const v1::NatView& view);
// All of a flavour's text (Asterisk: both files, each under a comment naming it).
std::string Render(Flavor flavor, const v1::NatView& view);

}  // namespace natpilot::pbx
