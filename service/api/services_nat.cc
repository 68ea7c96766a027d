// NatService: a device's NAT view (once, and streamed on every change) and the NAT doctor.
#include "api/convert.h"
#include "api/doctor.h"
#include "api/nat_view.h"
#include "api/reactors.h"
#include "api/services.h"
#include "core/event_kinds.h"
#include "core/validate.h"
#include "portmap/netutil.h"
#include "portmap/stun.h"
#include "portmap/upnp_description.h"

namespace natpilot {
namespace {

NatViewInputs Inputs(const ApiContext& ctx) {
  return NatViewInputs{ctx.store, ctx.gateway.Gateway(), ctx.static_rules.params.wan_address,
                       HostLanSubnets()};
}

// Sends the view, then again whenever its facts change, until the caller goes away or the device
// is removed. Each refresh rebuilds the view from what is committed, and nothing is filtered by
// event id, so events published out of id order lose nothing: the last refresh sees the newest
// state. A failed read ends the stream with INTERNAL (as a failed build does); it never escapes.
class NatViewWriter final : public BusStream<v1::NatView> {
 public:
  // device: as it was when the stream began; token_hash: the device token's that opened it (empty
  // for the admin). The stream ends when the device is removed (a device registered under its
  // name later is another one) or its token is reset.
  NatViewWriter(ApiContext ctx, const Device& device, std::string token_hash,
                StreamLimits::Slot slot)
      : BusStream(ctx.bus, std::move(slot)),
        ctx_(ctx),
        device_(device.name),
        device_id_(device.id),
        token_hash_(std::move(token_hash)) {
    if (ctx_.views != nullptr) job_ = ctx_.views->Add([this] { Refresh(); });
    Start([this](const std::vector<Event>& events) { OnEvents(events); },
          [this] { RefreshLocked(); });
  }
  void OnDone() override {
    if (ctx_.views != nullptr) ctx_.views->Remove(job_);  // waits for a running rebuild
    BusStream::OnDone();
  }

 private:
  const char* StreamName() const override { return "WatchNatView"; }

  // On the committing thread under the bus lock: only ask for a rebuild.
  void OnEvents(const std::vector<Event>& events) {
    bool relevant = false;
    for (const Event& e : events) relevant = relevant || e.device == device_ || e.device.empty();
    if (!relevant) return;
    if (ctx_.views != nullptr) return ctx_.views->Request(job_);
    Refresh();
  }

  void Refresh() {
    std::lock_guard inner(mu_);
    try {
      RefreshLocked();
    } catch (const std::exception& e) {
      FailLocked("rebuilding the view of " + device_ + " failed", e.what());
    }
  }

  void RefreshLocked() {
    if (EndedLocked()) return;
    auto now = ctx_.store.GetDevice(device_);
    if (!now || now->id != device_id_) {
      DropQueuedLocked();
      return EndLocked(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                    "device '" + device_ + "' was removed; this stream ends"));
    }
    if (!token_hash_.empty() && now->token_hash != token_hash_) {
      DropQueuedLocked();
      return EndLocked(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                    "the device's token was reset; this stream ends"));
    }
    auto view = BuildNatView(Inputs(ctx_), device_);
    if (!view) {
      DropQueuedLocked();
      return EndLocked(ToStatus(view.error()));
    }
    std::string facts = NatViewFacts(*view);
    if (facts == last_facts_) return;
    last_facts_ = std::move(facts);
    DropQueuedLocked();  // only the newest view matters
    QueueLocked(std::move(*view));
  }

  ApiContext ctx_;
  const std::string device_;
  const int64_t device_id_;
  const std::string token_hash_;
  uint64_t job_ = 0;
  std::string last_facts_;
};

}  // namespace

grpc::ServerUnaryReactor* NatServiceImpl::GetNatView(grpc::CallbackServerContext* c,
                                                     const v1::GetNatViewRequest* req,
                                                     v1::NatView* resp) {
  auto caller = BeginCall(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  if (auto r = ValidateDeviceName(req->device()); !r) return Done(c, r.error());  // "" is no device
  if (auto r = MayActOn(*caller, req->device(), "reading a NAT view"); !r)
    return Done(c, r.error());
  auto view = BuildNatView(Inputs(ctx_), req->device());
  if (!view) return Done(c, view.error());
  *resp = std::move(*view);
  return Done(c, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::NatView>* NatServiceImpl::WatchNatView(
    grpc::CallbackServerContext* c, const v1::WatchNatViewRequest* req) {
  auto caller = BeginCall(ctx_, *c, false);
  if (!caller) return new RefusedStream<v1::NatView>(ToStatus(caller.error()));
  if (auto r = ValidateDeviceName(req->device()); !r)
    return new RefusedStream<v1::NatView>(ToStatus(r.error()));
  if (auto r = MayActOn(*caller, req->device(), "watching a NAT view"); !r) {
    return new RefusedStream<v1::NatView>(ToStatus(r.error()));
  }
  auto device = ctx_.store.GetDevice(req->device());
  if (!device) return new RefusedStream<v1::NatView>(ToStatus(device.error()));
  auto slot = StreamSlot(ctx_, *caller);
  if (!slot) return new RefusedStream<v1::NatView>(ToStatus(slot.error()));
  return new NatViewWriter(ctx_, *device, caller->admin() ? "" : device->token_hash,
                           std::move(*slot));
}

grpc::ServerUnaryReactor* NatServiceImpl::Diagnose(grpc::CallbackServerContext* c,
                                                   const v1::DiagnoseRequest*,
                                                   v1::DiagnoseResponse* resp) {
  auto caller = BeginCall(ctx_, *c, false);
  if (!caller) return Done(c, caller.error());
  // What the store and the gateway state know, read here (quick); the STUN exchange and the path
  // check (up to about 5 s) run on the DoctorRunner's thread, never on gRPC's callback threads.
  auto in = std::make_shared<DoctorInputs>();
  in->gateway = ctx_.gateway.Gateway();
  auto mappings = ctx_.store.ListMappings(caller->admin() ? "" : caller->device);
  if (mappings) in->mappings = std::move(*mappings);
  LapseExpired(in->mappings, Clock::now());
  in->stun_server = ctx_.stun_server;
  in->hairpin_rules = ctx_.static_rules.params.hairpin;
  if (ctx_.upnp_events_status) in->upnp_events = ctx_.upnp_events_status();
  if (const auto& change = in->gateway.last_address_change) {
    for (const Event& e : ctx_.store.ListEvents(0, 1000)) {
      const bool pbx = e.kind == event::kPbxConfigWritten || e.kind == event::kPbxHookRan;
      if (pbx && e.at >= std::chrono::time_point_cast<Seconds>(change->at)) {
        in->pbx_followed_at = e.at;
        break;
      }
    }
  }
  auto* reactor = c->DefaultReactor();
  GatewayState& gateway = ctx_.gateway;
  auto finish = [reactor, resp, in, &gateway](const DoctorRunner::Results* r) {
    if (r == nullptr)
      return reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "natpilotd is shutting down"));
    in->stun = r->stun;
    in->path = r->path;
    // The internet sees another address than the gateway last told: ask the gateway now (a change
    // it did not announce). Behind another NAT (a reserved address on the gateway) they always
    // differ.
    const std::string& ext = in->gateway.info.external_address;
    if (in->stun && *in->stun && !ext.empty() && (*in->stun)->address != ext &&
        !upnp::IsReservedIpv4(ext)) {
      gateway.CheckExternalAddress("the doctor's STUN answer (" + (*in->stun)->address + ")");
    }
    for (auto& f : natpilot::Diagnose(*in)) *resp->add_findings() = std::move(f);
    resp->set_gateway_external_address(in->gateway.info.external_address);
    if (in->stun && *in->stun) resp->set_stun_address((*in->stun)->address);
    reactor->Finish(grpc::Status::OK);
  };
  if (in->stun_server.empty() || ctx_.doctor == nullptr) {  // nothing to ask the network
    const DoctorRunner::Results none;
    finish(&none);
    return reactor;
  }
  if (!ctx_.doctor->Submit(finish)) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "the doctor is busy with other requests; try again in a few seconds"));
  }
  return reactor;
}

}  // namespace natpilot
