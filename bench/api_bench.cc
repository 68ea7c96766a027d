// API latency and throughput (issue 9; not a test): natpilotd's gRPC API in-process, on a unix
// socket and TCP loopback, beside a bare server built from the same Debian gRPC that answers the
// same methods with a fixed reply and nothing else (no auth, no store): the floor. Prints
// p50/p90/p99 of sequential calls, calls/s with 64 concurrent callers from the callback (async)
// client, and the ratios natpilot/bare.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include "api/auth.h"
#include "api/convert.h"
#include "api/event_bus.h"
#include "api/server.h"
#include "app/registry.h"
#include "mapping/reconciler.h"
#include "store/sqlite_store.h"

namespace v1 = natpilot::v1;
using Clock = std::chrono::steady_clock;
using natpilot::ApiServer;

namespace {

constexpr const char* kToken = "npa_bench-admin-token-000000000000";

// The floor: the same methods, a fixed answer, nothing else.
class BareGateway final : public v1::GatewayService::CallbackService {
  grpc::ServerUnaryReactor* GetGateway(grpc::CallbackServerContext* c, const v1::GetGatewayRequest*,
                                       v1::GetGatewayResponse* resp) override {
    *resp = reply;
    auto* r = c->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 public:
  v1::GetGatewayResponse reply;
};
class BareMappings final : public v1::MappingService::CallbackService {
  grpc::ServerUnaryReactor* ListMappings(grpc::CallbackServerContext* c,
                                         const v1::ListMappingsRequest*,
                                         v1::ListMappingsResponse* resp) override {
    *resp = reply;
    auto* r = c->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 public:
  v1::ListMappingsResponse reply;
};

struct Stats {
  double p50, p90, p99, per_s;
};

Stats Sequential(const std::shared_ptr<grpc::Channel>& ch, bool token, int n, bool list) {
  auto gw = v1::GatewayService::NewStub(ch);
  auto maps = v1::MappingService::NewStub(ch);
  std::vector<double> us;
  us.reserve(n);
  const auto start = Clock::now();
  for (int i = 0; i < n + n / 10; ++i) {  // the first tenth warms up
    grpc::ClientContext ctx;
    if (token) ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
    const auto t0 = Clock::now();
    grpc::Status s;
    if (list) {
      v1::ListMappingsResponse r;
      s = maps->ListMappings(&ctx, {}, &r);
    } else {
      v1::GetGatewayResponse r;
      s = gw->GetGateway(&ctx, {}, &r);
    }
    if (!s.ok()) {
      std::fprintf(stderr, "call failed: %s\n", s.error_message().c_str());
      std::exit(1);
    }
    if (i >= n / 10)
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  return {at(0.5), at(0.9), at(0.99), (n + n / 10) / total_s};
}

// 64 callers, each issuing its next call when the last one completes, for `seconds`.
double Concurrent(const std::shared_ptr<grpc::Channel>& ch, bool token, int callers,
                  double seconds) {
  auto stub = v1::GatewayService::NewStub(ch);
  std::atomic<long> done{0};
  std::atomic<int> running{callers};
  std::mutex mu;
  std::condition_variable cv;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  struct Call {
    grpc::ClientContext ctx;
    v1::GetGatewayRequest req;
    v1::GetGatewayResponse resp;
  };
  auto start_one = [&](auto& self) -> void {
    auto* call = new Call;
    if (token) call->ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
    stub->async()->GetGateway(&call->ctx, &call->req, &call->resp,
                              [&, call, self](grpc::Status s) mutable {
                                delete call;
                                if (s.ok()) ++done;
                                if (Clock::now() < end) {
                                  self(self);
                                } else if (--running == 0) {
                                  std::lock_guard lock(mu);
                                  cv.notify_all();
                                }
                              });
  };
  const auto t0 = Clock::now();
  for (int i = 0; i < callers; ++i) start_one(start_one);
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return running == 0; });
  return done / std::chrono::duration<double>(Clock::now() - t0).count();
}

void Row(const char* what, const Stats& np, const Stats& bare) {
  std::printf("%-40s %7.0f %7.0f %7.0f %8.0f | %7.0f %7.0f %7.0f %8.0f | %5.2f %5.2f\n", what,
              np.p50, np.p90, np.p99, np.per_s, bare.p50, bare.p90, bare.p99, bare.per_s,
              np.p50 / bare.p50, np.per_s / bare.per_s);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 3000;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const auto dir =
      std::filesystem::temp_directory_path() / ("natpilot-api-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  natpilot::SqliteStore store(natpilot::StoreOptions{(dir / "natpilot.db").string()});
  natpilot::EventBus bus;
  store.SetEventListener([&bus](const std::vector<natpilot::Event>& e) { bus.Publish(e); });
  natpilot::Reconciler reconciler(store, std::vector<natpilot::PortMapper*>{},
                                  natpilot::ReconcilerOptions{},
                                  [] { return natpilot::Clock::now(); });
  natpilot::Policy policy;
  policy.max_devices = 1000;
  natpilot::Registry registry(
      store, policy, natpilot::PortPlan{}, [] { return natpilot::Clock::now(); }, nullptr);
  // 10,000 mappings: 100 devices with 1 SIP port (UDP) and 99 RTP ports each.
  for (int i = 0; i < 100; ++i) {
    natpilot::DeviceInput in;
    in.name = "dev" + std::to_string(i);
    in.address = "192.168.1." + std::to_string(10 + i);
    in.sip = natpilot::PortRange{static_cast<uint16_t>(5000 + i), static_cast<uint16_t>(5000 + i)};
    in.sip_transports = std::vector<natpilot::Transport>{natpilot::Transport::kUdp};
    in.rtp = natpilot::PortRange{static_cast<uint16_t>(20000 + 100 * i),
                                 static_cast<uint16_t>(20098 + 100 * i)};
    if (!registry.Register(in, "bench")) return 1;
  }
  natpilot::Authenticator auth(store, natpilot::AuthOptions{natpilot::HashToken(kToken), false});
  natpilot::RateLimiter limiter(0, 1);
  natpilot::ApiMetrics metrics;
  natpilot::StaticRulesOptions rules{natpilot::rules::RouterParams{}, ""};
  natpilot::ServerOptions o;
  o.unix_socket = (dir / "np.sock").string();
  o.listen = "127.0.0.1:0";
  o.metrics = &metrics;
  ApiServer server(natpilot::ApiContext{store, registry, reconciler, bus, rules, auth, limiter}, o);
  server.Start();

  // The bare server, answering what natpilot answers.
  BareGateway bare_gw;
  BareMappings bare_maps;
  {
    grpc::ClientContext ctx;
    (void)v1::GatewayService::NewStub(
        grpc::CreateChannel("unix:" + o.unix_socket, grpc::InsecureChannelCredentials()))
        ->GetGateway(&ctx, {}, &bare_gw.reply);
    grpc::ClientContext ctx2;
    (void)v1::MappingService::NewStub(
        grpc::CreateChannel("unix:" + o.unix_socket, grpc::InsecureChannelCredentials()))
        ->ListMappings(&ctx2, {}, &bare_maps.reply);
  }
  grpc::ServerBuilder b;
  int bare_port = 0;
  const std::string bare_sock = (dir / "bare.sock").string();
  b.AddListeningPort("unix:" + bare_sock, grpc::InsecureServerCredentials());
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &bare_port);
  b.RegisterService(&bare_gw);
  b.RegisterService(&bare_maps);
  auto bare = b.BuildAndStart();

  auto np_unix = grpc::CreateChannel("unix:" + o.unix_socket, grpc::InsecureChannelCredentials());
  auto np_tcp = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.tcp_port()),
                                    grpc::InsecureChannelCredentials());
  auto bare_unix = grpc::CreateChannel("unix:" + bare_sock, grpc::InsecureChannelCredentials());
  auto bare_tcp = grpc::CreateChannel("127.0.0.1:" + std::to_string(bare_port),
                                      grpc::InsecureChannelCredentials());

  std::printf("mappings in the store: %d\n", bare_maps.reply.mappings_size());
  {
    std::vector<double> ms;
    for (int i = 0; i < 30; ++i) {
      const auto t0 = Clock::now();
      auto all = store.ListMappings("");
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      v1::ListMappingsResponse resp;
      const auto t1 = Clock::now();
      for (const auto& m : *all) natpilot::ToProto(m, resp.add_mappings());
      ms.back() += 0;  // conversion reported on its own below
      if (i == 29) {
        std::printf(
            "of a 10,000-mapping list: store read %.1f ms, conversion to protobuf %.1f ms (last "
            "run)\n",
            ms.back(), std::chrono::duration<double, std::milli>(Clock::now() - t1).count());
      }
    }
    std::sort(ms.begin(), ms.end());
    std::printf("store read p50 %.1f ms\n\n", ms[ms.size() / 2]);
  }
  std::printf("%-40s %7s %7s %7s %8s | %7s %7s %7s %8s | %5s %5s\n", "sequential (us; calls/s)",
              "p50", "p90", "p99", "calls/s", "bare50", "bare90", "bare99", "calls/s", "p50x",
              "rate");
  Row("GetGateway, unix socket", Sequential(np_unix, false, n, false),
      Sequential(bare_unix, false, n, false));
  Row("GetGateway, TCP loopback (token)", Sequential(np_tcp, true, n, false),
      Sequential(bare_tcp, false, n, false));
  Row("ListMappings 10,000, unix socket", Sequential(np_unix, false, 60, true),
      Sequential(bare_unix, false, 60, true));
  std::printf("\n%-40s %10s %10s %6s\n", "64 concurrent callers (async client)", "natpilot", "bare",
              "ratio");
  for (auto [what, np_ch, bare_ch, token] :
       {std::tuple{"GetGateway calls/s, unix socket", np_unix, bare_unix, false},
        std::tuple{"GetGateway calls/s, TCP loopback", np_tcp, bare_tcp, true}}) {
    const double a = Concurrent(np_ch, token, 64, seconds);
    const double c = Concurrent(bare_ch, false, 64, seconds);
    std::printf("%-40s %10.0f %10.0f %6.2f\n", what, a, c, a / c);
  }
  bare->Shutdown();
  server.Shutdown();
  if (std::getenv("NATPILOT_BENCH_KEEP")) {
    std::printf("kept %s\n", dir.c_str());
  } else {
    std::filesystem::remove_all(dir);
  }
  return 0;
}
