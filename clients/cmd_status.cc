// natpilot health (is natpilotd serving?) and natpilot version (which natpilot is this?).
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <vector>

#include "cli_common.h"

namespace natpilot::cli {
namespace {

void Health(const Options& o, const Channel& channel) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest (the whole server); the
  // answer is HealthCheckResponse{status = 1 SERVING}, two bytes on the wire.
  grpc::GenericStub stub(channel);
  grpc::ByteBuffer request, response;
  grpc::Slice empty("", 0);
  request = grpc::ByteBuffer(&empty, 1);
  auto ctx = Ctx(5);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  Check(status, o);
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const auto& sl : slices) {
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  if (bytes != std::string("\x08\x01", 2)) throw CliError{"natpilotd answers but is not serving"};
  std::cout << "serving\n";
}

}  // namespace

void AddStatusCommands(CLI::App& app, Commands& commands) {
  auto* health =
      app.add_subcommand("health", "is natpilotd serving? (gRPC health check; exit 0 when it is)");
  commands.Add(health, Health);
  auto* version = app.add_subcommand("version", "print natpilot's version");
  commands.AddLocal(version, [] { std::cout << "natpilot " << NATPILOT_VERSION << "\n"; });
}

}  // namespace natpilot::cli
