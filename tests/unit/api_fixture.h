// A natpilotd API on real gRPC listeners (TCP on loopback and a unix socket) over a real SQLite
// store and a scripted gateway, for tests that call it as clients do.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "api/auth.h"
#include "api/event_bus.h"
#include "api/server.h"
#include "app/registry.h"
#include "core/validate.h"
#include "fake_gateway.h"
#include "mapping/reconciler.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "store/sqlite_store.h"

namespace natpilot {

namespace v1 = ::natpilot::v1;

constexpr const char* kAdminToken = "npa_test-admin-token-0123456789";

class ApiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("natpilot-api-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<SqliteStore>(StoreOptions{(dir_ / "natpilot.db").string()});
    store_->SetEventListener([this](const std::vector<Event>& events) { bus_.Publish(events); });
    gateway_.local = "192.168.1.2";
    reconciler_ = std::make_unique<Reconciler>(*store_, std::vector<PortMapper*>{&gateway_},
                                               ReconcilerOptions{}, [] { return Clock::now(); });
    Policy policy;
    policy.device_networks = {*ParseSubnet("192.168.1.0/24", "test")};
    registry_ = std::make_unique<Registry>(
        *store_, policy, PortPlan{}, [] { return Clock::now(); }, nullptr);
    auth_ = std::make_unique<Authenticator>(*store_, AuthOptions{HashToken(kAdminToken), false});
    // A frozen clock: each caller gets exactly its burst, whatever the machine's speed.
    limiter_ =
        std::make_unique<RateLimiter>(5, 50, [] { return RateLimiter::Clock::time_point{}; });
    ServerOptions o;
    o.unix_socket = (dir_ / "api.sock").string();
    o.listen = "127.0.0.1:0";
    server_ = std::make_unique<ApiServer>(
        ApiContext{*store_, *registry_, *reconciler_, bus_, rules_, *auth_, *limiter_}, o);
    server_->Start();
    tcp_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->tcp_port()),
                               grpc::InsecureChannelCredentials());
    unix_ = grpc::CreateChannel("unix:" + o.unix_socket, grpc::InsecureChannelCredentials());

    // Two devices, mapped on the gateway.
    ata_token_ = Register(unix_, "", "ata1", "192.168.1.20", 5060, 10000);
    pbx_token_ = Register(unix_, "", "pbx1", "192.168.1.30", 5080, 12000);
    reconciler_->RunOnce();
    ASSERT_EQ(gateway_.table.size(), 2u * (2 * 11 + 100));
  }
  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) c->AddMetadata("authorization", "Bearer " + token);
    return c;
  }
  std::string Register(const std::shared_ptr<grpc::Channel>& ch, const std::string& token,
                       const std::string& name, const std::string& address, uint32_t sip,
                       uint32_t rtp) {
    v1::RegisterDeviceRequest req;
    req.set_name(name);
    req.set_address(address);
    req.mutable_plan()->mutable_sip()->set_first(sip);
    req.mutable_plan()->mutable_sip()->set_last(sip + 10);
    req.mutable_plan()->mutable_rtp()->set_first(rtp);
    req.mutable_plan()->mutable_rtp()->set_last(rtp + 99);
    v1::RegisterDeviceResponse resp;
    auto status = v1::DeviceService::NewStub(ch)->RegisterDevice(Ctx(token).get(), req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp.token();
  }

  // Every row of every table, through a connection of its own.
  std::string DumpStore() const {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "natpilot.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    std::string out;
    std::vector<std::string> tables;
    auto collect = [](void* p, int, char** v, char**) {
      static_cast<std::vector<std::string>*>(p)->push_back(v[0]);
      return 0;
    };
    sqlite3_exec(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", collect,
                 &tables, nullptr);
    for (const auto& t : tables) {
      out += "== " + t + "\n";
      sqlite3_exec(
          db, ("SELECT * FROM " + t + " ORDER BY rowid").c_str(),
          [](void* p, int n, char** v, char**) {
            auto* s = static_cast<std::string*>(p);
            for (int i = 0; i < n; ++i) *s += std::string(v[i] ? v[i] : "NULL") + "|";
            *s += "\n";
            return 0;
          },
          &out, nullptr);
    }
    sqlite3_close(db);
    EXPECT_GT(out.size(), 1000u);  // the dump does see the devices, mappings and events
    return out;
  }
  std::string DumpGateway() const {
    std::string out;
    for (const auto& [key, e] : gateway_.table) {
      out += std::string(ToString(e.transport)) + " " + std::to_string(e.external_port) + " " +
             e.internal_address + ":" + std::to_string(e.internal_port) + "\n";
    }
    return out;
  }

  std::filesystem::path dir_;
  EventBus bus_;  // before the store, whose listener publishes to it
  std::unique_ptr<SqliteStore> store_;
  testing::FakeGateway gateway_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<RateLimiter> limiter_;
  StaticRulesOptions rules_{rules::RouterParams{}, ""};
  std::unique_ptr<ApiServer> server_;
  std::shared_ptr<grpc::Channel> tcp_, unix_;
  std::string ata_token_, pbx_token_;
};

}  // namespace natpilot
