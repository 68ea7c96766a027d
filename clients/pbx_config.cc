#include "pbx_config.h"

#include <nlohmann/json.hpp>

namespace natpilot::pbx {
namespace {

// Until the external address is known, the device keeps advertising its own.
std::string External(const v1::NatView& v) {
  return v.external_address().empty() ? v.internal_address() : v.external_address();
}

std::string Header(const v1::NatView& v, const char* comment) {
  std::string h = std::string(comment) + " natpilot: NAT settings of device " + v.device() + " (" +
                  v.internal_address() + "); regenerated when they change.\n";
  if (!v.complete()) h += std::string(comment) + " NOT COMPLETE: " + v.detail() + "\n";
  if (v.external_address().empty()) {
    h += std::string(comment) +
         " the external address is not known yet: the LAN address stands in.\n";
  }
  return h;
}

uint32_t SipExternalPort(const v1::NatView& v) {
  return v.sip_external_port() ? v.sip_external_port() : v.sip_port();
}

}  // namespace

bool ParseFlavor(std::string_view text, Flavor* out) {
  if (text == "asterisk")
    *out = Flavor::kAsterisk;
  else if (text == "freeswitch")
    *out = Flavor::kFreeswitch;
  else if (text == "json")
    *out = Flavor::kJson;
  else
    return false;
  return true;
}

std::string AsteriskPjsip(const v1::NatView& v) {
  std::string out = Header(v, ";");
  for (int t : v.sip_transports()) {
    const bool tcp = t == v1::TRANSPORT_TCP;
    const std::string proto = tcp ? "tcp" : "udp";
    out += "\n[transport-" + proto + "-natpilot]\n";
    out += "type = transport\n";
    out += "protocol = " + proto + "\n";
    out += "bind = 0.0.0.0:" + std::to_string(v.sip_port()) + "\n";
    // Without it Asterisk keeps a transport's previous values on a reload ("Transport ... is not
    // reloadable, maintaining previous values"): a new external address would never apply.
    out +=
        "; a new external address applies on 'module reload res_pjsip.so' only with "
        "allow_reload;\n";
    out += "; Asterisk warns that reloading a transport can disrupt calls in progress on it\n";
    out += "allow_reload = yes\n";
    out += "external_media_address = " + External(v) + "\n";
    out += "external_signaling_address = " + External(v) + "\n";
    // The external port of this transport's SIP port.
    uint32_t ext = v.sip_port();
    for (const auto& p : v.ports()) {
      if (p.purpose() == v1::MAPPING_PURPOSE_SIP && p.transport() == t &&
          p.internal_port() == v.sip_port()) {
        ext = p.external_port();
      }
    }
    out += "external_signaling_port = " + std::to_string(ext) + "\n";
    for (const auto& net : v.local_nets()) out += "local_net = " + net + "\n";
  }
  return out;
}

std::string AsteriskRtp(const v1::NatView& v) {
  return Header(v, ";") + "\n[general]\nrtpstart = " + std::to_string(v.rtp().first()) +
         "\nrtpend = " + std::to_string(v.rtp().last()) + "\n";
}

std::string Freeswitch(const v1::NatView& v) {
  std::string note = Header(v, "");
  for (size_t at; (at = note.find("--")) != std::string::npos;)
    note.replace(at, 2, "- -");  // XML comments
  std::string out = "<!--" + note + "-->\n<include>\n";
  out += "  <X-PRE-PROCESS cmd=\"set\" data=\"natpilot_ext_ip=" + External(v) + "\"/>\n";
  out += "  <X-PRE-PROCESS cmd=\"set\" data=\"natpilot_sip_port=" + std::to_string(v.sip_port()) +
         "\"/>\n";
  out += "  <X-PRE-PROCESS cmd=\"set\" data=\"natpilot_sip_external_port=" +
         std::to_string(SipExternalPort(v)) + "\"/>\n";
  out +=
      "  <X-PRE-PROCESS cmd=\"set\" data=\"natpilot_rtp_start=" + std::to_string(v.rtp().first()) +
      "\"/>\n";
  out += "  <X-PRE-PROCESS cmd=\"set\" data=\"natpilot_rtp_end=" + std::to_string(v.rtp().last()) +
         "\"/>\n";
  out += "  <!-- sip_profiles/*.xml, in <settings>:\n";
  out += "    <param name=\"sip-port\" value=\"$${natpilot_sip_port}\"/>\n";
  out += "    <param name=\"ext-rtp-ip\" value=\"$${natpilot_ext_ip}\"/>\n";
  out += "    <param name=\"ext-sip-ip\" value=\"$${natpilot_ext_ip}\"/>\n";
  out += "       autoload_configs/switch.conf.xml, in <settings>:\n";
  out += "    <param name=\"rtp-start-port\" value=\"$${natpilot_rtp_start}\"/>\n";
  out += "    <param name=\"rtp-end-port\" value=\"$${natpilot_rtp_end}\"/>\n";
  out +=
      "       A new address applies only after 'reloadxml' and then 'sofia profile PROFILE "
      "restart'\n";
  out +=
      "       (a profile's ext-rtp-ip and ext-sip-ip are read when it starts; the restart ends\n";
  out +=
      "       the calls on that profile). rtp-start-port/rtp-end-port need a FreeSWITCH restart.\n";
  out += "  -->\n</include>\n";
  return out;
}

std::string Json(const v1::NatView& v) {
  nlohmann::ordered_json j;
  j["device"] = v.device();
  j["internal_address"] = v.internal_address();
  j["external_address"] = v.external_address();
  j["complete"] = v.complete();
  j["sip_port"] = v.sip_port();
  j["sip_external_port"] = SipExternalPort(v);
  auto& ts = j["sip_transports"] = nlohmann::ordered_json::array();
  for (int t : v.sip_transports()) ts.push_back(t == v1::TRANSPORT_TCP ? "tcp" : "udp");
  j["rtp_start"] = v.rtp().first();
  j["rtp_end"] = v.rtp().last();
  j["local_nets"] = std::vector<std::string>(v.local_nets().begin(), v.local_nets().end());
  if (!v.detail().empty()) j["detail"] = v.detail();
  return j.dump(2) + "\n";
}

std::string Render(Flavor flavor, const v1::NatView& v) {
  switch (flavor) {
    case Flavor::kAsterisk:
      return "; ---- pjsip.conf (#include this file) ----\n" + AsteriskPjsip(v) +
             "\n; ---- rtp.conf ----\n" + AsteriskRtp(v);
    case Flavor::kFreeswitch:
      return Freeswitch(v);
    case Flavor::kJson:
      return Json(v);
  }
  return {};
}

}  // namespace natpilot::pbx
