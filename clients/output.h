// Human output (aligned columns) and JSON output of API messages for the natpilot CLI.
#pragma once

#include <google/protobuf/message.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "natpilot/v1/natpilot.pb.h"

namespace natpilot::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A message as JSON with the proto field names, enums as names, defaults included.
std::string ToJson(const google::protobuf::Message& message);

std::string Name(v1::Transport t);
std::string Name(v1::DeviceKind k);
std::string Name(v1::MappingState s);
std::string Name(v1::GatewayProtocol p);
std::string Name(v1::Gateway::Status s);
std::string Range(const v1::PortRange& r);
// "in 29m 58s", "expired", "permanent" or "-" relative to now.
std::string ExpiresIn(const google::protobuf::Timestamp& t, bool leased);
std::string Time(const google::protobuf::Timestamp& t);
// Mappings as a table, one row each (device show, mapping list).
void PrintMappings(const google::protobuf::RepeatedPtrField<v1::Mapping>& mappings,
                   std::ostream& out);
// The UPnP IGDs found besides the one in use (each protocol's probe), as a table; nothing if none.
void PrintOtherIgds(const v1::Gateway& g, std::ostream& out);

}  // namespace natpilot::cli
