#include "api/services.h"

#include <limits>

#include "api/convert.h"
#include "api/reactors.h"
#include "core/event_kinds.h"
#include "core/validate.h"

namespace natpilot {
namespace {

Result<Caller> Begin(const ApiContext& ctx, const grpc::CallbackServerContext& c, bool write) {
  return BeginCall(ctx, c, write);
}

}  // namespace

Result<StreamLimits::Slot> StreamSlot(const ApiContext& ctx, const Caller& caller) {
  if (ctx.streams == nullptr) return StreamLimits::Slot{};
  return ctx.streams->Acquire(caller);
}

Result<Caller> BeginCall(const ApiContext& ctx, const grpc::CallbackServerContext& c, bool write) {
  // Failed authentications count per source address; past the limit the address is refused before
  // any token is looked at.
  const std::string peer_ip = PeerIp(c.peer());
  const std::string failures_key = "address " + peer_ip;
  if (!peer_ip.empty() && ctx.auth_failures != nullptr &&
      ctx.auth_failures->Exhausted(failures_key)) {
    return Fail(Errc::kResourceExhausted,
                "too many failed authentications from " + peer_ip + "; wait a few seconds");
  }
  auto caller = Authenticate(ctx.auth, c);
  if (!caller) {
    if (!peer_ip.empty() && ctx.auth_failures != nullptr &&
        caller.error().code == make_error_code(Errc::kUnauthenticated)) {
      (void)ctx.auth_failures->Allow(failures_key);
    }
    return caller;
  }
  // Changes count per token (a token used from many addresses has one bucket); reads too for device
  // tokens (the admin's are not limited: the admin can change everything anyway).
  const std::string key = TokenKey(*caller);
  if (write) {
    if (auto r = ctx.write_limit.Allow(key); !r) return tl::unexpected(r.error());
  } else if (!caller->admin() && ctx.read_limit != nullptr) {
    if (auto r = ctx.read_limit->Allow(key); !r) return tl::unexpected(r.error());
  }
  return caller;
}

grpc::ServerUnaryReactor* DeviceServiceImpl::RegisterDevice(grpc::CallbackServerContext* c,
                                                            const v1::RegisterDeviceRequest* req,
                                                            v1::RegisterDeviceResponse* resp) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  if (auto r = AdminOnly(*caller, "registering a device"); !r) return Done(c, r.error());
  auto kind = req->kind();
  auto input =
      FromProto(req->name(), &kind, &req->address(), req->has_plan() ? &req->plan() : nullptr);
  if (!input) return Done(c, input.error());
  input->description = req->description();
  auto registered = ctx_.registry.Register(*input, caller->label);
  if (!registered) return Done(c, ForAdmin(registered.error()));
  ToProto(registered->device, resp->mutable_device());
  resp->set_token(registered->token);
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* DeviceServiceImpl::GetDevice(grpc::CallbackServerContext* c,
                                                       const v1::GetDeviceRequest* req,
                                                       v1::GetDeviceResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  if (auto r = ValidateDeviceName(req->name()); !r) return Done(c, r.error());  // "" is no device
  if (auto r = MayActOn(*caller, req->name(), "reading a device"); !r) return Done(c, r.error());
  auto device = ctx_.store.GetDevice(req->name());
  if (!device) return Done(c, ToStatus(device.error()));
  ToProto(*device, resp->mutable_device());
  auto mappings = ctx_.store.ListMappings(req->name());
  if (!mappings) return Done(c, ToStatus(mappings.error()));
  LapseExpired(*mappings, Clock::now());
  for (const Mapping& m : *mappings) ToProto(m, resp->add_mappings());
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* DeviceServiceImpl::ListDevices(grpc::CallbackServerContext* c,
                                                         const v1::ListDevicesRequest*,
                                                         v1::ListDevicesResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  for (const Device& d : ctx_.store.ListDevices()) {
    if (caller->admin() || d.name == caller->device) ToProto(d, resp->add_devices());
  }
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* DeviceServiceImpl::UpdateDevice(grpc::CallbackServerContext* c,
                                                          const v1::UpdateDeviceRequest* req,
                                                          v1::UpdateDeviceResponse* resp) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  if (auto r = MayActOn(*caller, req->name(), "updating a device"); !r) return Done(c, r.error());
  if (!caller->admin() && req->has_address()) {
    auto current = ctx_.store.GetDevice(req->name());
    if (!current) return Done(c, current.error());
    if (current->address != req->address()) {
      return Done(c,
                  grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               "a device token cannot move the device's ports to another address "
                               "(" +
                                   current->address + "); ask an admin"));
    }
  }
  auto kind = req->kind();
  auto input = FromProto(req->name(), req->has_kind() ? &kind : nullptr,
                         req->has_address() ? &req->address() : nullptr,
                         req->has_plan() ? &req->plan() : nullptr);
  if (!input) return Done(c, input.error());
  if (req->has_description()) input->description = req->description();
  if (req->forget_identity()) {
    if (auto r = AdminOnly(*caller, "forgetting a device's identity"); !r)
      return Done(c, r.error());
    input->forget_identity = true;
  }
  input->by_admin = caller->admin();
  auto device = ctx_.registry.Update(*input, caller->label);
  if (!device)
    return Done(c, ToStatus(caller->admin() ? ForAdmin(device.error()) : device.error()));
  ToProto(*device, resp->mutable_device());
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* DeviceServiceImpl::RemoveDevice(grpc::CallbackServerContext* c,
                                                          const v1::RemoveDeviceRequest* req,
                                                          v1::RemoveDeviceResponse*) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  if (auto r = MayActOn(*caller, req->name(), "removing a device"); !r) return Done(c, r.error());
  auto removed = ctx_.registry.Remove(req->name(), caller->label);
  return Done(c, removed ? grpc::Status::OK : ToStatus(removed.error()));
}

grpc::ServerUnaryReactor* DeviceServiceImpl::ResetDeviceToken(
    grpc::CallbackServerContext* c, const v1::ResetDeviceTokenRequest* req,
    v1::ResetDeviceTokenResponse* resp) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  if (auto r = AdminOnly(*caller, "resetting a device token"); !r) return Done(c, r.error());
  auto token = ctx_.registry.ResetToken(req->name(), caller->label);
  if (!token) return Done(c, token.error());
  resp->set_token(*token);
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* MappingServiceImpl::ListMappings(grpc::CallbackServerContext* c,
                                                           const v1::ListMappingsRequest* req,
                                                           v1::ListMappingsResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  const std::string device =
      caller->admin() || !req->device().empty() ? req->device() : caller->device;
  if (auto r = MayActOn(*caller, device, "listing mappings"); !r) return Done(c, r.error());
  auto mappings = ctx_.store.ListMappings(device);
  if (!mappings) return Done(c, ToStatus(mappings.error()));
  LapseExpired(*mappings, Clock::now());
  for (const Mapping& m : *mappings) ToProto(m, resp->add_mappings());
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* MappingServiceImpl::ReleaseMappings(grpc::CallbackServerContext* c,
                                                              const v1::ReleaseMappingsRequest* req,
                                                              v1::ReleaseMappingsResponse* resp) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  std::string device;
  switch (req->target_case()) {
    case v1::ReleaseMappingsRequest::kAll:
      if (!req->all()) {
        return Done(c, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "set all = true or name a device to release"));
      }
      break;
    case v1::ReleaseMappingsRequest::kDevice:
      device = req->device();
      if (device.empty()) {
        return Done(c, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "device name is empty"));
      }
      break;
    default:
      return Done(c, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "say what to release: all = true, or a device name"));
  }
  if (auto r = device.empty() ? AdminOnly(*caller, "releasing every device's mappings")
                              : MayActOn(*caller, device, "releasing mappings");
      !r) {
    return Done(c, r.error());
  }
  auto n = ctx_.registry.Release(device, caller->label, caller->admin());
  if (!n) return Done(c, ToStatus(n.error()));
  resp->set_released(*n);
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GatewayServiceImpl::GetGateway(grpc::CallbackServerContext* c,
                                                         const v1::GetGatewayRequest*,
                                                         v1::GetGatewayResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  ToProto(ctx_.gateway.Gateway(), resp->mutable_gateway());
  return Done(c, grpc::Status::OK);
}

grpc::ServerUnaryReactor* GatewayServiceImpl::RediscoverGateway(grpc::CallbackServerContext* c,
                                                                const v1::RediscoverGatewayRequest*,
                                                                v1::RediscoverGatewayResponse*) {
  auto caller = Begin(ctx_, *c, true);
  if (!caller) return Done(c, caller.error());
  if (auto r = AdminOnly(*caller, "rediscovering the gateway"); !r) return Done(c, r.error());
  ctx_.gateway.RequestProbe();
  return Done(c, grpc::Status::OK);
}

namespace {

// What events a caller sees: an admin all; a device its own, and only from its registration on
// (a device registered under a name that was used before sees nothing of the earlier device).
struct EventScope {
  std::string device;  // empty: every device
  int64_t from_id = 0;
  bool Shows(const Event& e) const {
    return device.empty() || (e.device == device && e.id >= from_id);
  }
};

Result<EventScope> ScopeOf(const Store& store, const Caller& caller) {
  if (caller.admin()) return EventScope{};
  auto device = store.GetDevice(caller.device);
  if (!device) return tl::unexpected(device.error());
  return EventScope{caller.device, store.FirstEventOf(*device)};
}

}  // namespace

grpc::ServerUnaryReactor* EventServiceImpl::ListEvents(grpc::CallbackServerContext* c,
                                                       const v1::ListEventsRequest* req,
                                                       v1::ListEventsResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  auto scope = ScopeOf(ctx_.store, *caller);
  if (!scope) return Done(c, ToStatus(scope.error()));
  const uint32_t limit = req->limit() == 0 ? 100 : std::min<uint32_t>(req->limit(), 10000);
  // Ids are int64 in the store: an after_id beyond that would wrap to a negative one (= all).
  if (req->after_id() > uint64_t(std::numeric_limits<int64_t>::max()))
    return Done(c, grpc::Status::OK);
  for (const Event& e : ctx_.store.ListEvents(static_cast<int64_t>(req->after_id()), limit)) {
    if (scope->Shows(e)) ToProto(e, resp->add_events());
  }
  return Done(c, grpc::Status::OK);
}

namespace {

// Streams the backlog, then every event as it is committed, until the caller goes away.
//
// Guarantee: the stream sends every event ListEvents shows from its start on, once each, in
// strictly increasing id order. Committers publish after releasing the store lock, so the bus can
// deliver ids 11 before 10. Ids grow in commit order (one writer at a time, each id the largest so
// far), so an id that is not the next one after the last sent means the ones between are committed
// and their publish is still on its way: the stream then reads everything after the last sent id
// from the store (CatchUpLocked) and drops later copies by id. There is no reorder buffer; one
// catch-up reads at most kMaxCatchUp events, and a stream further behind ends with DATA_LOSS
// (reconnect with a backlog). A failed read is logged and retried with the next event.
class EventWriter final : public BusStream<v1::Event> {
 public:
  static constexpr uint32_t kMaxCatchUp = 10000;

  EventWriter(ApiContext ctx, uint32_t backlog, EventScope scope, StreamLimits::Slot slot)
      : BusStream(ctx.bus, std::move(slot)), store_(ctx.store), scope_(std::move(scope)) {
    Start([this](const std::vector<Event>& events) { OnEvents(events); },
          [this, backlog] { BackfillLocked(backlog); });
  }

 private:
  const char* StreamName() const override { return "WatchEvents"; }

  void BackfillLocked(uint32_t backlog) {
    for (const Event& e : store_.ListEvents(0, std::min(backlog, kMaxCatchUp))) SendLocked(e);
    if (backlog == 0) {
      auto newest = store_.ListEvents(0, 1);
      if (!newest.empty()) last_id_ = std::max(last_id_, newest.back().id);
    }
  }

  void OnEvents(const std::vector<Event>& events) {
    std::lock_guard lock(mu_);
    if (EndedLocked()) return;
    for (const Event& e : events) {
      if (e.id <= last_id_) continue;  // sent already (backlog or catch-up)
      if (e.id != last_id_ + 1) return CatchUpLocked();
      SendLocked(e);
    }
  }

  // Sends every committed event after last_id_; the events of this publish are among them.
  void CatchUpLocked() {
    std::vector<Event> missed;
    try {
      missed = store_.ListEvents(last_id_, kMaxCatchUp);
    } catch (const std::exception& e) {
      spdlog::error(
          "WatchEvents: reading events after id {} failed (retried with the next event): {}",
          last_id_, e.what());
      return;
    }
    if (missed.size() >= kMaxCatchUp && missed.front().id != last_id_ + 1) {
      DropQueuedLocked();
      return EndLocked(grpc::Status(grpc::StatusCode::DATA_LOSS,
                                    "the stream fell more than " + std::to_string(kMaxCatchUp) +
                                        " events behind; watch again with a backlog"));
    }
    for (const Event& e : missed) SendLocked(e);
  }

  void SendLocked(const Event& e) {
    last_id_ = std::max(last_id_, e.id);
    if (EndedLocked() || !scope_.Shows(e)) return;
    v1::Event m;
    ToProto(e, &m);
    QueueLocked(std::move(m));
    // A device's stream ends with its device (a device registered under the name later is another
    // one) and with its token.
    if (!scope_.device.empty() && e.device == scope_.device) {
      if (e.kind == event::kDeviceRemoved) {
        EndLocked(grpc::Status(grpc::StatusCode::NOT_FOUND,
                               "device '" + e.device + "' was removed; this stream ends"));
      } else if (e.kind == event::kDeviceTokenReset) {
        EndLocked(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                               "the device's token was reset; this stream ends"));
      }
    }
  }

  const Store& store_;
  const EventScope scope_;
  int64_t last_id_ = 0;  // the newest id sent (or skipped by the device filter)
};

}  // namespace

grpc::ServerWriteReactor<v1::Event>* EventServiceImpl::WatchEvents(
    grpc::CallbackServerContext* c, const v1::WatchEventsRequest* req) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return new RefusedStream<v1::Event>(ToStatus(caller.error()));
  auto scope = ScopeOf(ctx_.store, *caller);
  if (!scope) return new RefusedStream<v1::Event>(ToStatus(scope.error()));
  auto slot = StreamSlot(ctx_, *caller);
  if (!slot) return new RefusedStream<v1::Event>(ToStatus(slot.error()));
  return new EventWriter(ctx_, req->backlog(), std::move(*scope), std::move(*slot));
}

grpc::ServerUnaryReactor* RulesServiceImpl::GenerateRules(grpc::CallbackServerContext* c,
                                                          const v1::GenerateRulesRequest* req,
                                                          v1::GenerateRulesResponse* resp) {
  auto caller = Begin(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  if (auto r = AdminOnly(*caller, "generating router rules"); !r) return Done(c, r.error());
  rules::Format format = rules::Format::kNftables;
  switch (req->format()) {
    case v1::RULES_FORMAT_NFTABLES:
      format = rules::Format::kNftables;
      break;
    case v1::RULES_FORMAT_IPTABLES:
      format = rules::Format::kIptables;
      break;
    case v1::RULES_FORMAT_OPENWRT:
      format = rules::Format::kOpenwrt;
      break;
    default:
      return Done(
          c,
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "rules format is missing or unknown; allowed: NFTABLES, IPTABLES, OPENWRT"));
  }
  rules::RouterParams params = ctx_.static_rules.params;
  if (!req->wan_interface().empty()) params.wan_interface = req->wan_interface();
  if (!req->lan_interface().empty()) params.lan_interface = req->lan_interface();
  if (!req->wan_address().empty()) params.wan_address = req->wan_address();
  if (!req->forward_chain().empty()) params.forward_chain = req->forward_chain();
  if (req->has_hairpin()) params.hairpin = req->hairpin();
  auto read = StaticRulesInput(ctx_.store, req->all_devices(), Clock::now());
  if (!read) return Done(c, ToStatus(read.error()));
  const rules::RulesInput& input = *read;
  auto text = rules::Generate(format, input, params);
  if (!text) return Done(c, ToStatus(text.error()));
  resp->set_text(*text);
  resp->set_registry_version(input.registry_version);
  for (const Device& d : input.devices) resp->add_devices(d.name);
  return Done(c, grpc::Status::OK);
}

}  // namespace natpilot
