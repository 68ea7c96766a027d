// natpilot mapping list and natpilot release.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"

namespace natpilot::cli {
namespace {

void ListMappings(const std::string& device, const Options& o, const Channel& channel) {
  v1::ListMappingsRequest req;
  req.set_device(device);
  v1::ListMappingsResponse resp;
  Check(v1::MappingService::NewStub(channel)->ListMappings(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
  } else {
    PrintMappings(resp.mappings(), std::cout);
  }
}

struct ReleaseFlags {
  bool all = false;
  std::string device;
};

void Release(const ReleaseFlags& f, const Options& o, const Channel& channel) {
  if (f.all == !f.device.empty()) {
    throw CliError{"say what to release: --all or --device NAME (one of them)", 2};
  }
  v1::ReleaseMappingsRequest req;
  if (f.all) {
    req.set_all(true);
  } else {
    req.set_device(f.device);
  }
  v1::ReleaseMappingsResponse resp;
  Check(v1::MappingService::NewStub(channel)->ReleaseMappings(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
  } else {
    std::cout << "released: " << resp.released() << " leases are being deleted from the gateway\n";
  }
}

}  // namespace

void AddMappingCommands(CLI::App& app, Commands& commands) {
  auto* mapping = app.add_subcommand("mapping", "list mappings");
  mapping->require_subcommand(1);
  mapping->fallthrough();
  auto* list = mapping->add_subcommand("list", "list every mapping with its state and expiry");
  // Kept alive by the handlers; CLI11 fills them in while parsing.
  auto device = std::make_shared<std::string>();
  list->add_option("--device", *device, "only this device's mappings");
  commands.Add(list, [device](const Options& o, const Channel& c) { ListMappings(*device, o, c); });

  auto* release =
      app.add_subcommand("release", "delete leases from the gateway now (devices stay)");
  auto f = std::make_shared<ReleaseFlags>();
  release->add_flag("--all", f->all, "every device's leases");
  release->add_option("--device", f->device, "one device's leases");
  commands.Add(release, [f](const Options& o, const Channel& c) { Release(*f, o, c); });
}

}  // namespace natpilot::cli
