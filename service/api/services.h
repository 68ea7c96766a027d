// The gRPC services of natpilot.v1. Thin: convert, call the registry/store/reconciler, convert
// back.
#pragma once

#include <functional>

#include "api/auth.h"
#include "api/event_bus.h"
#include "api/limits.h"
#include "api/refresher.h"
#include "app/registry.h"
#include "mapping/gateway_state.h"
#include "mapping/static_rules.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "store/store.h"

namespace natpilot {

struct ApiContext {
  Store& store;
  Registry& registry;
  GatewayState& gateway;  // what the reconciler knows of the gateway (read, probe, check)
  EventBus& bus;
  const StaticRulesOptions& static_rules;  // router parameters from the config
  const Authenticator& auth;
  RateLimiter& write_limit;
  std::string stun_server = {};  // doctor.stun_server; "" = not configured
  // The UPnP event subscription's state for the doctor; empty when events are off.
  std::function<std::string()> upnp_events_status = {};
  // Set by ApiServer (it owns them): streams per token, the doctor's network checks.
  StreamLimits* streams = nullptr;
  DoctorRunner* doctor = nullptr;
  Refresher* views = nullptr;            // WatchNatView rebuilds, off the committing thread
  RateLimiter* read_limit = nullptr;     // reads with a device token, per token
  RateLimiter* auth_failures = nullptr;  // failed authentications, per source address
};

// Who is calling; a write also spends one from the caller's rate limit.
Result<Caller> BeginCall(const ApiContext& ctx, const grpc::CallbackServerContext& c, bool write);
// The caller's place among its open streams (none to take when ctx has no StreamLimits).
Result<StreamLimits::Slot> StreamSlot(const ApiContext& ctx, const Caller& caller);

class DeviceServiceImpl final : public v1::DeviceService::CallbackService {
 public:
  explicit DeviceServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* RegisterDevice(grpc::CallbackServerContext* c,
                                           const v1::RegisterDeviceRequest* req,
                                           v1::RegisterDeviceResponse* resp) override;
  grpc::ServerUnaryReactor* GetDevice(grpc::CallbackServerContext* c,
                                      const v1::GetDeviceRequest* req,
                                      v1::GetDeviceResponse* resp) override;
  grpc::ServerUnaryReactor* ListDevices(grpc::CallbackServerContext* c,
                                        const v1::ListDevicesRequest* req,
                                        v1::ListDevicesResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateDevice(grpc::CallbackServerContext* c,
                                         const v1::UpdateDeviceRequest* req,
                                         v1::UpdateDeviceResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveDevice(grpc::CallbackServerContext* c,
                                         const v1::RemoveDeviceRequest* req,
                                         v1::RemoveDeviceResponse* resp) override;
  grpc::ServerUnaryReactor* ResetDeviceToken(grpc::CallbackServerContext* c,
                                             const v1::ResetDeviceTokenRequest* req,
                                             v1::ResetDeviceTokenResponse* resp) override;

 private:
  ApiContext ctx_;
};

class MappingServiceImpl final : public v1::MappingService::CallbackService {
 public:
  explicit MappingServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* ListMappings(grpc::CallbackServerContext* c,
                                         const v1::ListMappingsRequest* req,
                                         v1::ListMappingsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseMappings(grpc::CallbackServerContext* c,
                                            const v1::ReleaseMappingsRequest* req,
                                            v1::ReleaseMappingsResponse* resp) override;

 private:
  ApiContext ctx_;
};

class GatewayServiceImpl final : public v1::GatewayService::CallbackService {
 public:
  explicit GatewayServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* GetGateway(grpc::CallbackServerContext* c,
                                       const v1::GetGatewayRequest* req,
                                       v1::GetGatewayResponse* resp) override;
  grpc::ServerUnaryReactor* RediscoverGateway(grpc::CallbackServerContext* c,
                                              const v1::RediscoverGatewayRequest* req,
                                              v1::RediscoverGatewayResponse* resp) override;

 private:
  ApiContext ctx_;
};

class EventServiceImpl final : public v1::EventService::CallbackService {
 public:
  explicit EventServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* c,
                                       const v1::ListEventsRequest* req,
                                       v1::ListEventsResponse* resp) override;
  grpc::ServerWriteReactor<v1::Event>* WatchEvents(grpc::CallbackServerContext* c,
                                                   const v1::WatchEventsRequest* req) override;

 private:
  ApiContext ctx_;
};

class NatServiceImpl final : public v1::NatService::CallbackService {
 public:
  explicit NatServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* GetNatView(grpc::CallbackServerContext* c,
                                       const v1::GetNatViewRequest* req,
                                       v1::NatView* resp) override;
  grpc::ServerWriteReactor<v1::NatView>* WatchNatView(grpc::CallbackServerContext* c,
                                                      const v1::WatchNatViewRequest* req) override;
  grpc::ServerUnaryReactor* Diagnose(grpc::CallbackServerContext* c, const v1::DiagnoseRequest* req,
                                     v1::DiagnoseResponse* resp) override;

 private:
  ApiContext ctx_;
};

class RulesServiceImpl final : public v1::RulesService::CallbackService {
 public:
  explicit RulesServiceImpl(ApiContext ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* GenerateRules(grpc::CallbackServerContext* c,
                                          const v1::GenerateRulesRequest* req,
                                          v1::GenerateRulesResponse* resp) override;

 private:
  ApiContext ctx_;
};

}  // namespace natpilot
