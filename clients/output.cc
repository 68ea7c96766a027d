#include "output.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <ostream>

namespace natpilot::cli {

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

namespace {
std::string Strip(const std::string& full, const std::string& prefix) {
  std::string s = full.rfind(prefix, 0) == 0 ? full.substr(prefix.size()) : full;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(c));
  });
  return s;
}
}  // namespace

std::string Name(v1::Transport t) { return Strip(v1::Transport_Name(t), "TRANSPORT_"); }
std::string Name(v1::DeviceKind k) { return Strip(v1::DeviceKind_Name(k), "DEVICE_KIND_"); }
std::string Name(v1::MappingState s) { return Strip(v1::MappingState_Name(s), "MAPPING_STATE_"); }
std::string Name(v1::GatewayProtocol p) {
  if (p == v1::GATEWAY_PROTOCOL_UNSPECIFIED) return "-";
  return Strip(v1::GatewayProtocol_Name(p), "GATEWAY_PROTOCOL_");
}
std::string Name(v1::Gateway::Status s) { return Strip(v1::Gateway::Status_Name(s), "STATUS_"); }

std::string Range(const v1::PortRange& r) {
  if (r.first() == r.last()) return std::to_string(r.first());
  return std::to_string(r.first()) + "-" + std::to_string(r.last());
}

std::string ExpiresIn(const google::protobuf::Timestamp& t, bool leased) {
  if (!leased) return "-";
  if (t.seconds() == 0) return "permanent";
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t left = t.seconds() - now;
  if (left <= 0) return "expired";
  const int64_t h = left / 3600, m = (left % 3600) / 60, s = left % 60;
  std::string out = "in ";
  if (h) out += std::to_string(h) + "h ";
  if (h || m) out += std::to_string(m) + "m ";
  return out + std::to_string(s) + "s";
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(t.seconds());
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void PrintMappings(const google::protobuf::RepeatedPtrField<v1::Mapping>& mappings,
                   std::ostream& out) {
  Table t(
      {"DEVICE", "PURPOSE", "PROTO", "INTERNAL", "EXTERNAL", "STATE", "VIA", "EXPIRES", "DETAIL"});
  for (const auto& m : mappings) {
    const bool leased = m.provision() == v1::PROVISION_LEASE;
    const std::string ext = m.external_address().empty() ? "" : m.external_address() + ":";
    t.Add({m.device(), m.purpose() == v1::MAPPING_PURPOSE_RTP ? "rtp" : "sip", Name(m.transport()),
           m.internal_address() + ":" + std::to_string(m.internal_port()),
           ext + std::to_string(m.external_port()), Name(m.state()), Name(m.protocol()),
           ExpiresIn(m.expires_at(), leased), m.detail()});
  }
  t.Print(out);
}

void PrintOtherIgds(const v1::Gateway& g, std::ostream& out) {
  Table t({"OTHER IGD", "NAME", "MODEL", "DEVICE", "USED", "WHY"});
  size_t n = 0;
  for (const auto& p : g.protocols()) {
    for (const auto& f : p.other_igds()) {
      auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
      t.Add({dash(f.address()), dash(f.friendly_name()), dash(f.model()), dash(f.device_type()),
             f.skipped() ? "no (skipped)" : "no", f.reason() + " [" + f.root_desc_url() + "]"});
      ++n;
    }
  }
  if (n == 0) return;
  out << "\n";
  t.Print(out);
}

}  // namespace natpilot::cli
