// The API's doors over real gRPC connections (TCP on loopback and the unix socket): who may call,
// what each token reaches, the policy, hostile input and a flood of writes. Every refused call
// must leave the store (all tables, dumped through a second SQLite connection) and the gateway's
// table exactly as they were.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api_fixture.h"

namespace natpilot {
namespace {

using grpc::StatusCode;

using ApiSecurity = ApiFixture;

// A refused call: its code, a message that says why, and nothing changed anywhere.
#define EXPECT_REFUSED(call, code, words)                                             \
  do {                                                                                \
    const std::string store_before = DumpStore(), gateway_before = DumpGateway();     \
    const grpc::Status s = (call);                                                    \
    EXPECT_EQ(s.error_code(), code) << s.error_message();                             \
    EXPECT_NE(s.error_message().find(words), std::string::npos) << s.error_message(); \
    reconciler_->RunOnce();                                                           \
    EXPECT_EQ(DumpStore(), store_before);                                             \
    EXPECT_EQ(DumpGateway(), gateway_before);                                         \
  } while (0)

TEST_F(ApiSecurity, TcpCallsNeedAValidToken) {
  auto devices = v1::DeviceService::NewStub(tcp_);
  v1::ListDevicesResponse list;
  EXPECT_REFUSED(devices->ListDevices(Ctx("").get(), {}, &list), StatusCode::UNAUTHENTICATED,
                 "no token");
  EXPECT_REFUSED(devices->ListDevices(Ctx("npa_wrong").get(), {}, &list),
                 StatusCode::UNAUTHENTICATED, "not valid");
  auto basic = Ctx("");
  basic->AddMetadata("authorization", "Basic YWRtaW46YWRtaW4=");
  EXPECT_REFUSED(devices->ListDevices(basic.get(), {}, &list), StatusCode::UNAUTHENTICATED,
                 "Bearer");
  v1::RemoveDeviceRequest rm;
  rm.set_name("ata1");
  v1::RemoveDeviceResponse rm_resp;
  EXPECT_REFUSED(devices->RemoveDevice(Ctx("").get(), rm, &rm_resp), StatusCode::UNAUTHENTICATED,
                 "no token");
  v1::GenerateRulesRequest rules;
  rules.set_format(v1::RULES_FORMAT_NFTABLES);
  v1::GenerateRulesResponse rules_resp;
  EXPECT_REFUSED(v1::RulesService::NewStub(tcp_)->GenerateRules(Ctx("").get(), rules, &rules_resp),
                 StatusCode::UNAUTHENTICATED, "no token");
  // The event stream is refused before it starts.
  auto ctx = Ctx("");
  auto reader = v1::EventService::NewStub(tcp_)->WatchEvents(ctx.get(), {});
  v1::Event e;
  EXPECT_FALSE(reader->Read(&e));
  EXPECT_EQ(reader->Finish().error_code(), StatusCode::UNAUTHENTICATED);

  // The admin token and the unix socket may; events name who did it.
  EXPECT_TRUE(devices->ListDevices(Ctx(kAdminToken).get(), {}, &list).ok());
  EXPECT_EQ(list.devices_size(), 2);
  EXPECT_TRUE(v1::DeviceService::NewStub(unix_)->ListDevices(Ctx("").get(), {}, &list).ok());
  Register(tcp_, kAdminToken, "phone1", "192.168.1.40", 5100, 14000);
  EXPECT_EQ(store_->ListEvents(0, 1).back().caller, "admin token from 127.0.0.1");
  EXPECT_EQ(store_->ListEvents(0, 10).front().caller, "admin via unix socket");
}

TEST_F(ApiSecurity, ADeviceTokenReachesItsOwnDeviceOnly) {
  auto devices = v1::DeviceService::NewStub(tcp_);
  auto mappings = v1::MappingService::NewStub(tcp_);
  v1::GetDeviceRequest get;
  get.set_name("ata1");
  v1::GetDeviceResponse got;
  ASSERT_TRUE(devices->GetDevice(Ctx(ata_token_).get(), get, &got).ok());
  EXPECT_EQ(got.mappings_size(), 122);
  get.set_name("pbx1");
  EXPECT_REFUSED(devices->GetDevice(Ctx(ata_token_).get(), get, &got),
                 StatusCode::PERMISSION_DENIED, "reaches only that device");
  v1::ListDevicesResponse list;
  ASSERT_TRUE(devices->ListDevices(Ctx(ata_token_).get(), {}, &list).ok());
  ASSERT_EQ(list.devices_size(), 1);
  EXPECT_EQ(list.devices(0).name(), "ata1");
  v1::ListMappingsRequest lm;
  v1::ListMappingsResponse lm_resp;
  ASSERT_TRUE(mappings->ListMappings(Ctx(ata_token_).get(), lm, &lm_resp).ok());
  EXPECT_EQ(lm_resp.mappings_size(), 122);
  for (const auto& m : lm_resp.mappings()) EXPECT_EQ(m.device(), "ata1");
  lm.set_device("pbx1");
  EXPECT_REFUSED(mappings->ListMappings(Ctx(ata_token_).get(), lm, &lm_resp),
                 StatusCode::PERMISSION_DENIED, "not 'pbx1'");

  // Writes: never another device, never a registration, never another address.
  v1::RegisterDeviceRequest reg;
  reg.set_name("evil");
  reg.set_address("192.168.1.99");
  v1::RegisterDeviceResponse reg_resp;
  EXPECT_REFUSED(devices->RegisterDevice(Ctx(ata_token_).get(), reg, &reg_resp),
                 StatusCode::PERMISSION_DENIED, "needs the admin");
  v1::UpdateDeviceRequest up;
  up.set_name("pbx1");
  up.mutable_plan()->mutable_rtp()->set_first(12000);
  up.mutable_plan()->mutable_rtp()->set_last(12009);
  v1::UpdateDeviceResponse up_resp;
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp),
                 StatusCode::PERMISSION_DENIED, "not 'pbx1'");
  up.set_name("ata1");
  up.clear_plan();
  up.set_address("192.168.1.30");
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp),
                 StatusCode::PERMISSION_DENIED, "cannot move");
  up.clear_address();
  up.set_forget_identity(true);
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp),
                 StatusCode::PERMISSION_DENIED, "needs the admin");
  up.set_forget_identity(false);
  up.mutable_plan()->mutable_rtp()->set_first(1000);  // outside the policy
  up.mutable_plan()->mutable_rtp()->set_last(1099);
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp),
                 StatusCode::PERMISSION_DENIED, "policy.internal_ports");
  v1::RemoveDeviceRequest rm;
  rm.set_name("pbx1");
  v1::RemoveDeviceResponse rm_resp;
  EXPECT_REFUSED(devices->RemoveDevice(Ctx(ata_token_).get(), rm, &rm_resp),
                 StatusCode::PERMISSION_DENIED, "not 'pbx1'");
  v1::ReleaseMappingsRequest rel;
  rel.set_all(true);
  v1::ReleaseMappingsResponse rel_resp;
  EXPECT_REFUSED(mappings->ReleaseMappings(Ctx(ata_token_).get(), rel, &rel_resp),
                 StatusCode::PERMISSION_DENIED, "needs the admin");
  rel.set_device("pbx1");
  EXPECT_REFUSED(mappings->ReleaseMappings(Ctx(ata_token_).get(), rel, &rel_resp),
                 StatusCode::PERMISSION_DENIED, "not 'pbx1'");
  v1::ResetDeviceTokenRequest reset;
  reset.set_name("pbx1");
  v1::ResetDeviceTokenResponse reset_resp;
  EXPECT_REFUSED(devices->ResetDeviceToken(Ctx(ata_token_).get(), reset, &reset_resp),
                 StatusCode::PERMISSION_DENIED, "needs the admin");
  v1::GenerateRulesRequest rules;
  rules.set_format(v1::RULES_FORMAT_NFTABLES);
  v1::GenerateRulesResponse rules_resp;
  EXPECT_REFUSED(
      v1::RulesService::NewStub(tcp_)->GenerateRules(Ctx(ata_token_).get(), rules, &rules_resp),
      StatusCode::PERMISSION_DENIED, "needs the admin");

  // Its own device, within the policy: allowed, and the event names the device.
  up.mutable_plan()->mutable_rtp()->set_first(10000);
  up.mutable_plan()->mutable_rtp()->set_last(10009);
  ASSERT_TRUE(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp).ok());
  EXPECT_EQ(store_->ListEvents(0, 1).back().caller, "device ata1 from 127.0.0.1");
  // Its events only.
  v1::ListEventsRequest le;
  le.set_limit(100);
  v1::ListEventsResponse le_resp;
  ASSERT_TRUE(
      v1::EventService::NewStub(tcp_)->ListEvents(Ctx(ata_token_).get(), le, &le_resp).ok());
  ASSERT_GT(le_resp.events_size(), 0);
  for (const auto& ev : le_resp.events()) EXPECT_EQ(ev.device(), "ata1");
}

TEST_F(ApiSecurity, HostileRequestsAreRefusedAndChangeNothing) {
  auto reg = [](const std::string& name, const std::string& address,
                const std::string& description = "") {
    v1::RegisterDeviceRequest r;
    r.set_name(name);
    r.set_address(address);
    r.set_description(description);
    r.mutable_plan()->mutable_sip()->set_first(5200);
    r.mutable_plan()->mutable_sip()->set_last(5200);
    r.mutable_plan()->mutable_rtp()->set_first(16000);
    r.mutable_plan()->mutable_rtp()->set_last(16009);
    return r;
  };
  // The same doors over TCP with the admin token and over the unix socket.
  for (const auto& channel : {tcp_, unix_}) {
    SCOPED_TRACE(channel == tcp_ ? "tcp" : "unix socket");
    auto devices = v1::DeviceService::NewStub(channel);
    v1::RegisterDeviceResponse resp;
    EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(), reg("x", "10.9.9.9"), &resp),
                   StatusCode::PERMISSION_DENIED, "policy.device_networks");
    auto plan = reg("x", "192.168.1.50");
    plan.mutable_plan()->mutable_rtp()->set_last(18000);
    EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(), plan, &resp),
                   StatusCode::PERMISSION_DENIED, "policy.max_rtp_ports");
    plan.mutable_plan()->mutable_rtp()->set_first(100000);
    EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(), plan, &resp),
                   StatusCode::INVALID_ARGUMENT, "1-65535");
    for (const std::string& name :
         {std::string("ata\n1"), std::string("ata\x01"), std::string("a\0b", 3),
          std::string("x'; DROP TABLE devices; --"), std::string("ata1\" OR 1=1"),
          std::string(33, 'a'), std::string("ätä")}) {
      EXPECT_REFUSED(
          devices->RegisterDevice(Ctx(kAdminToken).get(), reg(name, "192.168.1.50"), &resp),
          StatusCode::INVALID_ARGUMENT, "A-Z a-z 0-9");
    }
    // An address is its exact bytes: what follows a NUL is not ignored.
    for (const std::string& address :
         {std::string("192.168.60.60\0garbage", 21), std::string("192.168.1.50\n", 13),
          std::string("192.168.1.50\0", 13)}) {
      EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(), reg("x", address), &resp),
                     StatusCode::INVALID_ARGUMENT, "only digits and dots are allowed");
    }
    EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(),
                                           reg("x", "192.168.1.50", std::string(300, 'd')), &resp),
                   StatusCode::INVALID_ARGUMENT, "200 bytes");
    EXPECT_REFUSED(
        devices->RegisterDevice(Ctx(kAdminToken).get(), reg("x", "192.168.1.50", "bell\a"), &resp),
        StatusCode::INVALID_ARGUMENT, "control character");
    // A message far beyond anything valid is cut off by the transport.
    EXPECT_REFUSED(devices->RegisterDevice(Ctx(kAdminToken).get(),
                                           reg(std::string(200000, 'a'), "192.168.1.50"), &resp),
                   StatusCode::RESOURCE_EXHAUSTED, "");
  }
  auto devices = v1::DeviceService::NewStub(tcp_);
  v1::RegisterDeviceResponse resp;
  // SQL metacharacters in a description are just text.
  const std::string sql = "'); DELETE FROM mappings; -- \"; DROP TABLE devices";
  ASSERT_TRUE(
      devices->RegisterDevice(Ctx(kAdminToken).get(), reg("x", "192.168.1.50", sql), &resp).ok());
  EXPECT_EQ(resp.device().description(), sql);
  EXPECT_EQ(store_->ListDevices().size(), 3u);
  EXPECT_EQ(store_->ListMappings("").value().size(), 2u * 122 + 2 + 10);
}

// An empty name is no device (the store reads "" as "all"), and an event id beyond int64 does not
// wrap around to "every event".
TEST_F(ApiSecurity, EmptyMeansNothingAndHugeIdsDoNotWrap) {
  for (const auto& channel : {tcp_, unix_}) {
    SCOPED_TRACE(channel == tcp_ ? "tcp" : "unix socket");
    auto devices = v1::DeviceService::NewStub(channel);
    auto nat = v1::NatService::NewStub(channel);
    auto events = v1::EventService::NewStub(channel);
    v1::GetDeviceRequest get;
    v1::GetDeviceResponse got;
    EXPECT_REFUSED(devices->GetDevice(Ctx(kAdminToken).get(), get, &got),
                   StatusCode::INVALID_ARGUMENT, "A-Z a-z 0-9");
    EXPECT_EQ(got.mappings_size(), 0);
    v1::GetNatViewRequest view_req;
    v1::NatView view;
    EXPECT_REFUSED(nat->GetNatView(Ctx(kAdminToken).get(), view_req, &view),
                   StatusCode::INVALID_ARGUMENT, "A-Z a-z 0-9");
    EXPECT_EQ(view.ports_size(), 0);
    v1::WatchNatViewRequest watch_req;
    auto ctx = Ctx(kAdminToken);
    auto stream = nat->WatchNatView(ctx.get(), watch_req);
    v1::NatView first;
    EXPECT_FALSE(stream->Read(&first));
    EXPECT_EQ(stream->Finish().error_code(), StatusCode::INVALID_ARGUMENT);
    v1::ListEventsRequest list;
    list.set_after_id(uint64_t(1) << 63);
    v1::ListEventsResponse listed;
    ASSERT_TRUE(events->ListEvents(Ctx(kAdminToken).get(), list, &listed).ok());
    EXPECT_EQ(listed.events_size(), 0);
    list.set_after_id(~uint64_t(0));
    ASSERT_TRUE(events->ListEvents(Ctx(kAdminToken).get(), list, &listed).ok());
    EXPECT_EQ(listed.events_size(), 0);
  }
  EXPECT_FALSE(store_->GetDevice(""));
}

TEST_F(ApiSecurity, ADeviceTokenLearnsNothingAboutOtherDevices) {
  auto devices = v1::DeviceService::NewStub(tcp_);
  auto events = v1::EventService::NewStub(tcp_);
  // A conflict says that ports are taken, not by whom; the admin is told whose they are.
  v1::UpdateDeviceRequest up;
  up.set_name("ata1");
  up.mutable_plan()->mutable_rtp()->set_first(12050);
  up.mutable_plan()->mutable_rtp()->set_last(12149);
  v1::UpdateDeviceResponse up_resp;
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp),
                 StatusCode::FAILED_PRECONDITION, "overlap another device's");
  const grpc::Status told = devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp);
  EXPECT_EQ(told.error_message().find("pbx1"), std::string::npos) << told.error_message();
  EXPECT_EQ(told.error_message().find("12000"), std::string::npos) << told.error_message();
  EXPECT_REFUSED(devices->UpdateDevice(Ctx(kAdminToken).get(), up, &up_resp),
                 StatusCode::FAILED_PRECONDITION, "(device 'pbx1' holds 12050-12099)");

  // An admin's release holds against the device's own token: a no-change update, or a new plan,
  // maps nothing again; the admin's update does.
  auto released = [&] {
    int n = 0;
    const auto ms = store_->ListMappings("ata1");
    for (const Mapping& m : *ms) n += m.released;
    return n;
  };
  v1::ReleaseMappingsRequest rel;
  rel.set_device("ata1");
  v1::ReleaseMappingsResponse rel_resp;
  ASSERT_TRUE(
      v1::MappingService::NewStub(unix_)->ReleaseMappings(Ctx("").get(), rel, &rel_resp).ok());
  reconciler_->RunOnce();
  ASSERT_EQ(released(), 122);
  const size_t gateway_after_release = gateway_.table.size();
  EXPECT_EQ(gateway_after_release, 2u * 11 + 100);  // pbx1's entries only
  up.clear_plan();
  up.set_description("same plan");
  ASSERT_TRUE(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp).ok());
  reconciler_->RunOnce();
  EXPECT_EQ(released(), 122);
  up.mutable_plan()->mutable_rtp()->set_first(10000);
  up.mutable_plan()->mutable_rtp()->set_last(10109);  // ten new ports
  ASSERT_TRUE(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp).ok());
  reconciler_->RunOnce();
  EXPECT_EQ(released(), 132);
  EXPECT_EQ(gateway_.table.size(), gateway_after_release);
  const auto ata_mappings = store_->ListMappings("ata1");
  for (const Mapping& m : *ata_mappings) {
    EXPECT_NE(m.detail.find("released by an admin"), std::string::npos) << m.detail;
  }
  up.clear_plan();
  ASSERT_TRUE(devices->UpdateDevice(Ctx(kAdminToken).get(), up, &up_resp).ok());
  reconciler_->RunOnce();
  EXPECT_EQ(released(), 0);
  EXPECT_EQ(gateway_.table.size(), gateway_after_release + 132);

  // A name used again is a new device: its token sees none of the earlier device's events.
  v1::RemoveDeviceRequest rm;
  rm.set_name("pbx1");
  v1::RemoveDeviceResponse rm_resp;
  ASSERT_TRUE(devices->RemoveDevice(Ctx(kAdminToken).get(), rm, &rm_resp).ok());
  const std::string reused = Register(tcp_, kAdminToken, "pbx1", "192.168.1.31", 5080, 12000);
  int64_t registered_id = 0;
  for (const Event& e : store_->ListEvents(0, 1000)) {
    if (e.kind == "device.registered" && e.device == "pbx1") registered_id = e.id;
  }
  ASSERT_GT(registered_id, 0);
  v1::ListEventsRequest le;
  le.set_limit(1000);
  v1::ListEventsResponse le_resp;
  ASSERT_TRUE(events->ListEvents(Ctx(reused).get(), le, &le_resp).ok());
  ASSERT_GT(le_resp.events_size(), 0);
  for (const auto& ev : le_resp.events()) EXPECT_GE(int64_t(ev.id()), registered_id) << ev.kind();
  v1::WatchEventsRequest watch;
  watch.set_backlog(1000);
  auto ctx = Ctx(reused);
  auto reader = events->WatchEvents(ctx.get(), watch);
  v1::Event first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(int64_t(first.id()), registered_id);
  EXPECT_EQ(first.kind(), "device.registered");
  ctx->TryCancel();
  reader->Finish();
  // The admin still reads the earlier device's history.
  ASSERT_TRUE(events->ListEvents(Ctx(kAdminToken).get(), le, &le_resp).ok());
  bool earlier = false;
  for (const auto& ev : le_resp.events())
    earlier |= ev.device() == "pbx1" && int64_t(ev.id()) < registered_id;
  EXPECT_TRUE(earlier);
}

// A device's own release is its own to undo; its streams end with the device and with its token.
TEST_F(ApiSecurity, ADevicesStreamsEndWithItAndItsOwnReleaseIsItsOwn) {
  auto devices = v1::DeviceService::NewStub(tcp_);
  v1::ReleaseMappingsRequest rel;
  rel.set_device("ata1");
  v1::ReleaseMappingsResponse rel_resp;
  ASSERT_TRUE(v1::MappingService::NewStub(tcp_)
                  ->ReleaseMappings(Ctx(ata_token_).get(), rel, &rel_resp)
                  .ok());
  auto released = [&] {
    int n = 0;
    const auto ms = store_->ListMappings("ata1");
    for (const Mapping& m : *ms) n += m.released;
    return n;
  };
  ASSERT_EQ(released(), 122);
  v1::UpdateDeviceRequest up;
  up.set_name("ata1");
  up.set_description("back");
  v1::UpdateDeviceResponse up_resp;
  ASSERT_TRUE(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp).ok());
  EXPECT_EQ(released(), 0) << "a device could not undo its own release";

  // Streams opened with a device's token: events and the NAT view.
  auto watch = [&](const std::string& token, const std::string& device) {
    struct Streams {
      std::unique_ptr<grpc::ClientContext> ev_ctx, nv_ctx;
      std::unique_ptr<grpc::ClientReader<v1::Event>> events;
      std::unique_ptr<grpc::ClientReader<v1::NatView>> views;
    } s;
    s.ev_ctx = Ctx(token);
    s.nv_ctx = Ctx(token);
    v1::WatchEventsRequest we;
    s.events = v1::EventService::NewStub(tcp_)->WatchEvents(s.ev_ctx.get(), we);
    v1::WatchNatViewRequest wn;
    wn.set_device(device);
    s.views = v1::NatService::NewStub(tcp_)->WatchNatView(s.nv_ctx.get(), wn);
    v1::NatView first;
    EXPECT_TRUE(s.views->Read(&first));  // the stream is open
    return s;
  };
  auto drain_events = [](auto& reader) {
    v1::Event e;
    std::string last;
    while (reader->Read(&e)) last = e.kind();
    return std::make_pair(reader->Finish(), last);
  };
  auto drain_views = [](auto& reader) {
    v1::NatView v;
    while (reader->Read(&v)) {
    }
    return reader->Finish();
  };
  auto ata = watch(ata_token_, "ata1");
  auto pbx = watch(pbx_token_, "pbx1");

  // The admin removes ata1 and registers another device under its name: the old token's streams
  // end with the removal and never show the new device.
  v1::RemoveDeviceRequest rm;
  rm.set_name("ata1");
  v1::RemoveDeviceResponse rm_resp;
  ASSERT_TRUE(devices->RemoveDevice(Ctx(kAdminToken).get(), rm, &rm_resp).ok());
  Register(tcp_, kAdminToken, "ata1", "192.168.1.21", 5060, 10000);
  auto [ev_status, last] = drain_events(ata.events);
  EXPECT_EQ(ev_status.error_code(), StatusCode::NOT_FOUND) << ev_status.error_message();
  EXPECT_EQ(last, "device.removed");
  const grpc::Status nv_status = drain_views(ata.views);
  EXPECT_EQ(nv_status.error_code(), StatusCode::NOT_FOUND) << nv_status.error_message();

  // pbx1's token is reset: its streams end too.
  v1::ResetDeviceTokenRequest reset;
  reset.set_name("pbx1");
  v1::ResetDeviceTokenResponse reset_resp;
  ASSERT_TRUE(devices->ResetDeviceToken(Ctx(kAdminToken).get(), reset, &reset_resp).ok());
  auto [pbx_status, pbx_last] = drain_events(pbx.events);
  EXPECT_EQ(pbx_status.error_code(), StatusCode::UNAUTHENTICATED) << pbx_status.error_message();
  EXPECT_EQ(pbx_last, "device.token-reset");
  // The view ends at its next rebuild (any change about the device or the gateway).
  reconciler_->RunOnce();
  v1::UpdateDeviceRequest touch;
  touch.set_name("pbx1");
  touch.set_description("touched");
  ASSERT_TRUE(devices->UpdateDevice(Ctx(kAdminToken).get(), touch, &up_resp).ok());
  EXPECT_EQ(drain_views(pbx.views).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(ApiSecurity, AFloodOfWritesIsLimitedPerCallerAndReadsStayServed) {
  auto devices = v1::DeviceService::NewStub(tcp_);
  const std::string store_before = DumpStore();
  std::atomic<int> exhausted{0}, other{0};
  std::atomic<bool> flooding{true};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t) {
    flood.emplace_back([&] {
      auto stub = v1::DeviceService::NewStub(tcp_);
      for (int i = 0; i < 100; ++i) {
        v1::RemoveDeviceRequest rm;
        rm.set_name("nosuch");  // allowed through the limit: NOT_FOUND; past it: RESOURCE_EXHAUSTED
        v1::RemoveDeviceResponse r;
        auto s = stub->RemoveDevice(Ctx(kAdminToken).get(), rm, &r);
        if (s.error_code() == StatusCode::RESOURCE_EXHAUSTED) {
          ++exhausted;
          EXPECT_NE(s.error_message().find("retry in"), std::string::npos) << s.error_message();
        } else {
          ++other;
        }
      }
    });
  }
  // Meanwhile, reads and another caller's writes are served.
  int reads = 0;
  std::thread reader([&] {
    auto stub = v1::DeviceService::NewStub(unix_);
    while (flooding) {
      v1::ListDevicesResponse list;
      if (stub->ListDevices(Ctx("").get(), {}, &list).ok() && list.devices_size() == 2) ++reads;
    }
  });
  for (auto& t : flood) t.join();
  EXPECT_EQ(DumpStore(), store_before);
  v1::UpdateDeviceRequest up;
  up.set_name("ata1");
  v1::UpdateDeviceResponse up_resp;
  EXPECT_TRUE(devices->UpdateDevice(Ctx(ata_token_).get(), up, &up_resp).ok());
  flooding = false;
  reader.join();
  // The set-up's registrations came over the unix socket, a caller of its own.
  EXPECT_EQ(other.load(), 50);  // the burst, then nothing: the clock stands still
  EXPECT_EQ(exhausted.load(), 350);
  EXPECT_GT(reads, 0);
}

// A device token holds at most 8 streams, from every address together; another token is not
// affected, and a closed stream gives its place back.
TEST_F(ApiSecurity, StreamsAreBoundedPerToken) {
  auto nat = v1::NatService::NewStub(tcp_);
  struct Open {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::NatView>> reader;
  };
  const auto open = [&](const std::string& token, const std::string& device) {
    Open o{Ctx(token), nullptr};
    v1::WatchNatViewRequest req;
    req.set_device(device);
    o.reader = nat->WatchNatView(o.ctx.get(), req);
    return o;
  };
  std::vector<Open> streams;
  for (int i = 0; i < 8; ++i) {
    streams.push_back(open(ata_token_, "ata1"));
    v1::NatView view;
    ASSERT_TRUE(streams.back().reader->Read(&view)) << i;  // open and sending
  }
  Open ninth = open(ata_token_, "ata1");
  v1::NatView view;
  EXPECT_FALSE(ninth.reader->Read(&view));
  auto status = ninth.reader->Finish();
  EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("device ata1 has 8 streams open"), std::string::npos)
      << status.error_message();
  // WatchEvents counts too.
  {
    auto events = v1::EventService::NewStub(tcp_);
    auto ctx = Ctx(ata_token_);
    auto reader = events->WatchEvents(ctx.get(), v1::WatchEventsRequest());
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    EXPECT_EQ(reader->Finish().error_code(), StatusCode::RESOURCE_EXHAUSTED);
  }
  // Another device's token is not affected.
  Open other = open(pbx_token_, "pbx1");
  EXPECT_TRUE(other.reader->Read(&view));
  other.ctx->TryCancel();
  // A closed stream gives its place back (the server sees the cancel, then OnDone: polled).
  streams.back().ctx->TryCancel();
  (void)streams.back().reader->Finish();
  streams.pop_back();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    Open again = open(ata_token_, "ata1");
    reopened = again.reader->Read(&view);
    again.ctx->TryCancel();
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reopened);
  for (auto& o : streams) o.ctx->TryCancel();
}

// The doctor's network checks: one look shared by the calls waiting for it, a bounded number
// waiting (more are refused at once), and every waiting call answered at shutdown.
TEST(DoctorRunner, SharesOneLookAndBoundsTheWaiting) {
  // A STUN server that never answers (each look takes its full timeouts, about 5 s).
  const int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
  // Declared before the runner, which may still call `done` while it stops (a failed ASSERT).
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, shutdown = 0;
  DoctorRunner runner("127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 4,
                      std::chrono::seconds(10));
  auto done = [&](const DoctorRunner::Results* r) {
    std::lock_guard lock(mu);
    if (r == nullptr) {
      ++shutdown;
    } else {
      ++answered;
      EXPECT_TRUE(r->stun.has_value() && !*r->stun);  // timed out: an error, not an answer
    }
    cv.notify_all();
  };
  ASSERT_TRUE(runner.Submit(done));
  // The first is being looked at (it left the queue at once, or does soon): the next 4 wait.
  int accepted = 1, refused = 0;
  for (int i = 0; i < 10; ++i) (runner.Submit(done) ? accepted : refused)++;
  EXPECT_GE(refused,
            10 - 5);  // at most 4 waiting besides the one running (5 if it had not started)
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == accepted; }));
  }
  // Within the cache time, another call is answered from the last look.
  ASSERT_TRUE(runner.Submit(done));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(2), [&] { return answered == accepted + 1; }));
  }
  runner.Stop();
  EXPECT_TRUE(runner.Submit(done));  // after Stop: answered at once as shutting down
  EXPECT_EQ(shutdown, 1);
  ::close(silent);
}

// Failed authentications count per source address: past 10 in a row, the address is refused
// before a token is looked at (a token guesser gains nothing and costs little); the unix socket
// is not affected. Limits count per token, whatever address it comes from.
TEST_F(ApiSecurity, FailedAuthenticationsAreLimitedPerAddressAndLimitsPerToken) {
  // A device token's reads (before the guesses below, which block this address for a while): past
  // the burst (400), refused with when to retry. Eight callers at once, so the reads outrun the
  // refill (200/s) on any machine.
  std::mutex mu;
  grpc::Status last;
  std::atomic<bool> refused{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&] {
      auto devices = v1::DeviceService::NewStub(tcp_);
      for (int i = 0; i < 5000 && !refused; ++i) {
        v1::GetDeviceRequest get;
        get.set_name("ata1");
        v1::GetDeviceResponse got;
        auto status = devices->GetDevice(Ctx(ata_token_).get(), get, &got);
        if (status.error_code() == StatusCode::RESOURCE_EXHAUSTED) {
          std::lock_guard lock(mu);
          last = status;
          refused = true;
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(last.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(last.error_message().find("too many reads from device ata1"), std::string::npos)
      << last.error_message();
  auto gw = v1::GatewayService::NewStub(tcp_);
  int unauthenticated = 0, exhausted = 0;
  for (int i = 0; i < 15; ++i) {
    v1::GetGatewayResponse r;
    const auto code =
        gw->GetGateway(Ctx("npd_guess-" + std::to_string(i)).get(), {}, &r).error_code();
    unauthenticated += code == StatusCode::UNAUTHENTICATED;
    exhausted += code == StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_GE(unauthenticated, 10);
  EXPECT_GE(exhausted, 1);
  EXPECT_EQ(unauthenticated + exhausted, 15);
  v1::GetGatewayResponse r;
  EXPECT_TRUE(v1::GatewayService::NewStub(unix_)->GetGateway(Ctx("").get(), {}, &r).ok());
  // Whose bucket: one per token.
  Caller a{Caller::Role::kDevice, "ata1", "device ata1 from 192.168.1.20", "192.168.1.20"};
  Caller b{Caller::Role::kDevice, "ata1", "device ata1 from 192.168.1.99", "192.168.1.99"};
  EXPECT_EQ(TokenKey(a), TokenKey(b));
  Caller admin_tcp{Caller::Role::kAdmin, "", "admin token from 127.0.0.1", "127.0.0.1"};
  Caller admin_unix{Caller::Role::kAdmin, "", "admin via unix socket", ""};
  EXPECT_NE(TokenKey(admin_tcp), TokenKey(admin_unix));
  EXPECT_NE(TokenKey(a), TokenKey(admin_tcp));
}

}  // namespace
}  // namespace natpilot
