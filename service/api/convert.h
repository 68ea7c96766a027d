// Conversions between core types and natpilot.v1 messages, and errors to grpc::Status.
#pragma once

#include <grpcpp/grpcpp.h>

#include "app/registry.h"
#include "core/error.h"
#include "core/types.h"
#include "mapping/gateway_state.h"
#include "natpilot/v1/natpilot.pb.h"

namespace natpilot {
namespace pb = ::natpilot::v1;

grpc::Status ToStatus(const Error& error);
void ToProto(const Device& d, pb::Device* out);
void ToProto(const Mapping& m, pb::Mapping* out);
void ToProto(const Event& e, pb::Event* out);
void ToProto(const GatewaySnapshot& g, pb::Gateway* out);
// Request fields to a DeviceInput; rejects enum values that are out of range.
Result<DeviceInput> FromProto(const std::string& name, const pb::DeviceKind* kind,
                              const std::string* address, const pb::PortPlan* plan);

}  // namespace natpilot
