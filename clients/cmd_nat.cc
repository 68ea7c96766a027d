// natpilot pbx-config and natpilot doctor: a device's NAT view and what stands in its way.
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"
#include "pbx_config.h"

namespace natpilot::cli {
namespace {

struct PbxFlags {
  std::string device, flavor = "json";
  bool follow = false;
};

void PbxConfig(const PbxFlags& f, const Options& o, const Channel& channel) {
  pbx::Flavor flavor;
  if (!pbx::ParseFlavor(f.flavor, &flavor)) {
    throw CliError{"--flavor '" + f.flavor + "' is unknown; allowed: asterisk, freeswitch, json",
                   2};
  }
  auto nat = v1::NatService::NewStub(channel);
  if (!f.follow) {
    v1::GetNatViewRequest req;
    req.set_device(f.device);
    v1::NatView view;
    Check(nat->GetNatView(Ctx().get(), req, &view), o);
    std::cout << pbx::Render(flavor, view);
  } else {
    v1::WatchNatViewRequest req;
    req.set_device(f.device);
    auto ctx = Ctx(0);
    auto reader = nat->WatchNatView(ctx.get(), req);
    v1::NatView view;
    while (reader->Read(&view)) std::cout << pbx::Render(flavor, view) << std::flush;
    Check(reader->Finish(), o);
  }
}

void Doctor(const Options& o, const Channel& channel) {
  v1::DiagnoseResponse resp;
  Check(v1::NatService::NewStub(channel)->Diagnose(Ctx().get(), {}, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
    return;
  }
  static const char* kMark[] = {"?", "ok", "info", "WARNING", "PROBLEM"};
  for (const auto& f : resp.findings()) {
    std::cout << "[" << kMark[std::clamp<int>(f.level(), 0, 4)] << "] " << f.topic() << ": "
              << f.text() << "\n";
    if (!f.advice().empty()) std::cout << "      -> " << f.advice() << "\n";
  }
}

}  // namespace

void AddNatCommands(CLI::App& app, Commands& commands) {
  auto* pbx_config = app.add_subcommand(
      "pbx-config", "what a PBX or ATA must advertise: external address and ports");
  // Kept alive by the handler; CLI11 fills it in while parsing.
  auto f = std::make_shared<PbxFlags>();
  pbx_config->add_option("DEVICE", f->device, "device name")->required();
  pbx_config->add_option("--flavor", f->flavor, "asterisk, freeswitch or json")
      ->capture_default_str();
  pbx_config->add_flag("-f,--follow", f->follow, "print it again whenever it changes");
  commands.Add(pbx_config, [f](const Options& o, const Channel& c) { PbxConfig(*f, o, c); });

  auto* doctor = app.add_subcommand(
      "doctor", "what stands between the internet and the devices, and what to do");
  commands.Add(doctor, Doctor);
}

}  // namespace natpilot::cli
