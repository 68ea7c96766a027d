// The NAT view over real gRPC: what a PBX asks for, and the stream that tells it of changes.
#include <thread>

#include "api_fixture.h"

namespace natpilot {
namespace {

using NatViewApi = ApiFixture;

TEST_F(NatViewApi, TellsTheExternalAddressAndPortsOfADevice) {
  auto nat = v1::NatService::NewStub(unix_);
  v1::GetNatViewRequest req;
  req.set_device("ata1");
  v1::NatView view;
  auto status = nat->GetNatView(Ctx("").get(), req, &view);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(view.device(), "ata1");
  EXPECT_EQ(view.internal_address(), "192.168.1.20");
  EXPECT_EQ(view.external_address(), "198.51.100.7");  // the scripted gateway's
  EXPECT_TRUE(view.complete()) << view.detail();
  EXPECT_EQ(view.sip_port(), 5060u);
  EXPECT_EQ(view.sip_external_port(), 5060u);
  EXPECT_EQ(view.rtp().first(), 10000u);
  EXPECT_EQ(view.rtp().last(), 10099u);
  EXPECT_EQ(view.ports_size(), 122);
  for (const auto& p : view.ports()) {
    EXPECT_EQ(p.provision(), v1::PROVISION_LEASE);
    EXPECT_EQ(p.external_port(), p.internal_port());
  }
  EXPECT_TRUE(view.has_valid_until());
  // A device token reads its own view only.
  EXPECT_TRUE(v1::NatService::NewStub(tcp_)->GetNatView(Ctx(ata_token_).get(), req, &view).ok());
  req.set_device("pbx1");
  EXPECT_EQ(
      v1::NatService::NewStub(tcp_)->GetNatView(Ctx(ata_token_).get(), req, &view).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  req.set_device("nosuch");
  EXPECT_EQ(nat->GetNatView(Ctx("").get(), req, &view).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(NatViewApi, TheStreamSendsTheViewAgainOnlyWhenItsFactsChange) {
  auto nat = v1::NatService::NewStub(tcp_);
  v1::WatchNatViewRequest req;
  req.set_device("ata1");
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + ata_token_);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(30));  // a hang fails, not blocks
  auto reader = nat->WatchNatView(&ctx, req);
  v1::NatView view;
  ASSERT_TRUE(reader->Read(&view));
  EXPECT_TRUE(view.complete());

  // A renewal moves expiry times only: no new view. (The next view read is the change below.)
  auto ms = store_->ListMappings("ata1").value();
  for (auto& m : ms) m.expires_at += Seconds(1800);
  ASSERT_TRUE(store_->SaveMappings(
      ms, {Event{0, Clock::now(), "mapping.renewed", "ata1", "natpilotd", "x"}}));

  // The RTP range moves: the view says so at once (pending), then again once mapped.
  DeviceInput up;
  up.name = "ata1";
  up.rtp = PortRange{20000, 20009};
  ASSERT_TRUE(registry_->Update(up, "admin via unix socket"));
  ASSERT_TRUE(reader->Read(&view)) << reader->Finish().error_message();
  EXPECT_EQ(view.rtp().first(), 20000u);
  EXPECT_FALSE(view.complete());
  EXPECT_NE(view.detail().find("10 of 32 ports are not provided (10 pending)"), std::string::npos)
      << view.detail();
  reconciler_->RunOnce();
  ASSERT_TRUE(reader->Read(&view));
  EXPECT_TRUE(view.complete()) << view.detail();

  // A fallback to static rules is a change of how ports are provided.
  gateway_.refuse_with = 606;
  up.rtp = PortRange{21000, 21009};
  ASSERT_TRUE(registry_->Update(up, "t"));
  reconciler_->RunOnce();
  bool static_rule = false;
  while (!static_rule && reader->Read(&view)) {
    for (const auto& p : view.ports())
      static_rule = static_rule || p.provision() == v1::PROVISION_STATIC_RULE;
  }
  EXPECT_TRUE(static_rule);

  // Removing the device ends the stream.
  ASSERT_TRUE(registry_->Remove("ata1", "t"));
  while (reader->Read(&view)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(NatViewApi, AnotherDevicesStreamIsRefused) {
  v1::WatchNatViewRequest req;
  req.set_device("pbx1");
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + ata_token_);
  auto reader = v1::NatService::NewStub(tcp_)->WatchNatView(&ctx, req);
  v1::NatView view;
  EXPECT_FALSE(reader->Read(&view));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(NatViewApi, TheDoctorAnswersAnyCaller) {
  v1::DiagnoseResponse resp;
  ASSERT_TRUE(v1::NatService::NewStub(tcp_)->Diagnose(Ctx(ata_token_).get(), {}, &resp).ok());
  EXPECT_EQ(resp.gateway_external_address(), "198.51.100.7");
  bool mappings = false;
  for (const auto& f : resp.findings()) {
    if (f.topic() == "mappings") {
      mappings = true;
      EXPECT_NE(f.text().find("all 122 wanted forwards"), std::string::npos)
          << f.text();  // its own only
    }
  }
  EXPECT_TRUE(mappings);
}

}  // namespace
}  // namespace natpilot
