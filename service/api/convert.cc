#include "api/convert.h"

#include <google/protobuf/util/time_util.h>

namespace natpilot {
namespace {

void SetTime(TimePoint t, google::protobuf::Timestamp* out) {
  if (t == TimePoint{}) return;
  out->set_seconds(std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count());
}

pb::Transport ToProto(Transport t) {
  return t == Transport::kTcp ? pb::TRANSPORT_TCP : pb::TRANSPORT_UDP;
}

}  // namespace

grpc::Status ToStatus(const Error& e) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (Classify(e)) {
    case Errc::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Errc::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case Errc::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case Errc::kConflict:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Errc::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Errc::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case Errc::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
    case Errc::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Errc::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case Errc::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
  }
  return grpc::Status(code, e.message);
}

void ToProto(const Device& d, pb::Device* out) {
  out->set_name(d.name);
  out->set_kind(static_cast<pb::DeviceKind>(d.kind));
  out->set_address(d.address);
  auto* plan = out->mutable_plan();
  plan->mutable_sip()->set_first(d.plan.sip.first);
  plan->mutable_sip()->set_last(d.plan.sip.last);
  if (d.plan.sip_udp) plan->add_sip_transports(pb::TRANSPORT_UDP);
  if (d.plan.sip_tcp) plan->add_sip_transports(pb::TRANSPORT_TCP);
  plan->mutable_rtp()->set_first(d.plan.rtp.first);
  plan->mutable_rtp()->set_last(d.plan.rtp.last);
  SetTime(d.created_at, out->mutable_created_at());
  SetTime(d.updated_at, out->mutable_updated_at());
  out->set_mappings_total(d.mappings_total);
  out->set_mappings_active(d.mappings_active);
  out->set_description(d.description);
  out->set_mac(d.mac);
  out->set_suspended(d.suspended);
}

void ToProto(const Mapping& m, pb::Mapping* out) {
  out->set_device(m.device);
  out->set_purpose(m.purpose == Purpose::kRtp ? pb::MAPPING_PURPOSE_RTP : pb::MAPPING_PURPOSE_SIP);
  out->set_transport(ToProto(m.transport));
  out->set_internal_address(m.internal_address);
  out->set_internal_port(m.internal_port);
  out->set_external_port(m.external_port);
  out->set_state(static_cast<pb::MappingState>(m.state));
  const bool leased = m.protocol != GatewayProtocol::kNone;
  out->set_provision(m.state == MappingState::kStaticRule ? pb::PROVISION_STATIC_RULE
                     : leased                             ? pb::PROVISION_LEASE
                                                          : pb::PROVISION_NONE);
  out->set_protocol(static_cast<pb::GatewayProtocol>(m.protocol));
  out->set_external_address(m.external_address);
  if (leased) {
    SetTime(m.granted_at, out->mutable_granted_at());
    SetTime(m.expires_at, out->mutable_expires_at());
    SetTime(m.renew_at, out->mutable_renew_at());
  }
  out->set_detail(m.detail);
}

void ToProto(const Event& e, pb::Event* out) {
  out->set_id(static_cast<uint64_t>(e.id));
  SetTime(e.at, out->mutable_at());
  out->set_kind(e.kind);
  out->set_device(e.device);
  out->set_caller(e.caller);
  out->set_message(e.message);
}

void ToProto(const GatewaySnapshot& g, pb::Gateway* out) {
  using S = GatewayInfo::Status;
  switch (g.info.status) {
    case S::kSearching:
      out->set_status(pb::Gateway::STATUS_SEARCHING);
      break;
    case S::kReady:
      out->set_status(pb::Gateway::STATUS_READY);
      break;
    case S::kNotConnected:
      out->set_status(pb::Gateway::STATUS_NOT_CONNECTED);
      break;
    case S::kNotFound:
      out->set_status(pb::Gateway::STATUS_NOT_FOUND);
      break;
  }
  if (g.info.status == S::kReady)
    out->set_protocol(static_cast<pb::GatewayProtocol>(g.info.protocol));
  out->set_address(g.info.address);
  out->set_control_url(g.info.control_url);
  out->set_external_address(g.info.external_address);
  out->set_local_address(g.info.local_address);
  out->set_detail(g.info.status == S::kSearching && g.info.detail.empty() ? "discovery under way"
                                                                          : g.info.detail);
  out->set_device_id(g.info.identity);
  SetTime(g.checked_at, out->mutable_checked_at());
  SetTime(g.next_check_at, out->mutable_next_check_at());
  for (const ProtocolReport& r : g.protocols) {
    auto* p = out->add_protocols();
    p->set_protocol(static_cast<pb::GatewayProtocol>(r.protocol));
    p->set_finished(r.done);
    p->set_answered(r.done && r.info.status == S::kReady);
    p->set_took_ms(static_cast<uint32_t>(r.took.count()));
    p->set_external_address(r.info.external_address);
    p->set_detail(r.done ? r.info.detail : "still probing");
    if (!r.done) continue;
    for (const IgdFound& f : r.info.other_igds) {
      auto* o = p->add_other_igds();
      o->set_address(f.address);
      o->set_root_desc_url(f.root_desc_url);
      o->set_friendly_name(f.friendly_name);
      o->set_model(f.model);
      o->set_device_type(f.device_type);
      o->set_skipped(f.skipped);
      o->set_reason(f.reason);
    }
  }
}

namespace {
Result<PortRange> RangeFromProto(const pb::PortRange& r, const char* what) {
  if (r.first() == 0 || r.last() == 0 || r.first() > 65535 || r.last() > 65535) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " " + std::to_string(r.first()) + "-" +
                                            std::to_string(r.last()) +
                                            " has a port outside 1-65535");
  }
  return PortRange{static_cast<uint16_t>(r.first()), static_cast<uint16_t>(r.last())};
}
}  // namespace

Result<DeviceInput> FromProto(const std::string& name, const pb::DeviceKind* kind,
                              const std::string* address, const pb::PortPlan* plan) {
  DeviceInput in;
  in.name = name;
  if (kind && *kind != pb::DEVICE_KIND_UNSPECIFIED) {
    if (*kind < pb::DEVICE_KIND_ATA || *kind > pb::DEVICE_KIND_OTHER) {
      return Fail(Errc::kInvalidArgument, "device kind " + std::to_string(*kind) +
                                              " is unknown; allowed: ATA, PBX, PHONE, OTHER");
    }
    in.kind = static_cast<DeviceKind>(*kind);
  }
  if (address) in.address = *address;
  if (plan) {
    if (plan->has_sip()) {
      auto r = RangeFromProto(plan->sip(), "SIP range");
      if (!r) return tl::unexpected(r.error());
      in.sip = *r;
    }
    if (plan->has_rtp()) {
      auto r = RangeFromProto(plan->rtp(), "RTP range");
      if (!r) return tl::unexpected(r.error());
      in.rtp = *r;
    }
    if (plan->sip_transports_size() > 0) {
      std::vector<Transport> ts;
      for (int t : plan->sip_transports()) {
        if (t != pb::TRANSPORT_UDP && t != pb::TRANSPORT_TCP) {
          return Fail(Errc::kInvalidArgument,
                      "SIP transport " + std::to_string(t) + " is unknown; allowed: UDP, TCP");
        }
        ts.push_back(t == pb::TRANSPORT_TCP ? Transport::kTcp : Transport::kUdp);
      }
      in.sip_transports = ts;
    }
  }
  return in;
}

}  // namespace natpilot
