// natpilot device add/update/token/list/show/rm.
#include <charconv>
#include <iostream>
#include <memory>
#include <string_view>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"

namespace natpilot::cli {
namespace {

v1::PortRange ParseRange(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return CliError{
        flag + " '" + text + "' is not a port range; expected PORT or FIRST-LAST, e.g. 10000-10099",
        2};
  };
  auto num = [&](std::string_view s) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) throw bad();
    return v;
  };
  v1::PortRange r;
  const auto dash = text.find('-');
  const std::string_view t(text);
  r.set_first(num(dash == std::string::npos ? t : t.substr(0, dash)));
  r.set_last(dash == std::string::npos ? r.first() : num(t.substr(dash + 1)));
  return r;
}

v1::DeviceKind ParseKind(const std::string& k) {
  if (k == "ata") return v1::DEVICE_KIND_ATA;
  if (k == "pbx") return v1::DEVICE_KIND_PBX;
  if (k == "phone") return v1::DEVICE_KIND_PHONE;
  if (k == "other") return v1::DEVICE_KIND_OTHER;
  throw CliError{"--kind '" + k + "' is unknown; allowed: ata, pbx, phone, other", 2};
}

struct PlanFlags {
  std::string sip, rtp, transports;
  bool Any() const { return !sip.empty() || !rtp.empty() || !transports.empty(); }
  void Fill(v1::PortPlan* plan) const {
    if (!sip.empty()) *plan->mutable_sip() = ParseRange("--sip", sip);
    if (!rtp.empty()) *plan->mutable_rtp() = ParseRange("--rtp", rtp);
    if (transports.empty()) return;
    for (const std::string& t : {std::string("udp"), std::string("tcp")}) {
      if (transports.find(t) != std::string::npos) {
        plan->add_sip_transports(t == "udp" ? v1::TRANSPORT_UDP : v1::TRANSPORT_TCP);
      }
    }
    if (transports != "udp" && transports != "tcp" && transports != "udp,tcp" &&
        transports != "tcp,udp") {
      throw CliError{
          "--sip-transports '" + transports + "' is not allowed; use udp, tcp or udp,tcp", 2};
    }
  }
};

// One device subcommand runs at a time, so they all share this storage.
struct DeviceFlags {
  std::string name, address, kind, description;
  PlanFlags plan;
  bool forget_identity = false;
};

void PrintDevice(const v1::Device& d) {
  Table t({"NAME", "KIND", "ADDRESS", "SIP", "SIP TRANSPORTS", "RTP (udp)", "ACTIVE"});
  std::string ts;
  for (int x : d.plan().sip_transports()) {
    ts += (ts.empty() ? "" : ",") + Name(static_cast<v1::Transport>(x));
  }
  t.Add({d.name(), Name(d.kind()), d.address(), Range(d.plan().sip()), ts, Range(d.plan().rtp()),
         std::to_string(d.mappings_active()) + "/" + std::to_string(d.mappings_total())});
  t.Print(std::cout);
  if (!d.description().empty()) std::cout << "description: " << d.description() << "\n";
  std::cout << "mac: " << (d.mac().empty() ? "(not seen yet)" : d.mac()) << "\n";
  if (!d.suspended().empty()) std::cout << "SUSPENDED: " << d.suspended() << "\n";
}

void RegisterDevice(const DeviceFlags& f, const Options& o, const Channel& channel) {
  v1::RegisterDeviceRequest req;
  req.set_name(f.name);
  req.set_address(f.address);
  if (!f.kind.empty()) req.set_kind(ParseKind(f.kind));
  if (f.plan.Any()) f.plan.Fill(req.mutable_plan());
  req.set_description(f.description);
  v1::RegisterDeviceResponse resp;
  Check(v1::DeviceService::NewStub(channel)->RegisterDevice(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
  } else {
    PrintDevice(resp.device());
    std::cout << "token: " << resp.token()
              << "\n  (shown once: the device's own API token; natpilot device token " << f.name
              << " issues a new one)\n";
  }
}

void ResetToken(const DeviceFlags& f, const Options& o, const Channel& channel) {
  v1::ResetDeviceTokenRequest req;
  req.set_name(f.name);
  v1::ResetDeviceTokenResponse resp;
  Check(v1::DeviceService::NewStub(channel)->ResetDeviceToken(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
  } else {
    std::cout << "token: " << resp.token() << "\n  (shown once; the old token no longer works)\n";
  }
}

// `description_given`: --description was on the command line, so even "" replaces the old text.
void UpdateDevice(const DeviceFlags& f, bool description_given, const Options& o,
                  const Channel& channel) {
  v1::UpdateDeviceRequest req;
  req.set_name(f.name);
  if (!f.address.empty()) req.set_address(f.address);
  if (!f.kind.empty()) req.set_kind(ParseKind(f.kind));
  if (f.plan.Any()) f.plan.Fill(req.mutable_plan());
  if (description_given) req.set_description(f.description);
  req.set_forget_identity(f.forget_identity);
  v1::UpdateDeviceResponse resp;
  Check(v1::DeviceService::NewStub(channel)->UpdateDevice(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp.device()) << "\n";
  } else {
    PrintDevice(resp.device());
  }
}

void ListDevices(const Options& o, const Channel& channel) {
  v1::ListDevicesResponse resp;
  Check(v1::DeviceService::NewStub(channel)->ListDevices(Ctx().get(), {}, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
    return;
  }
  Table t({"NAME", "KIND", "ADDRESS", "SIP", "RTP (udp)", "ACTIVE"});
  for (const auto& d : resp.devices()) {
    t.Add({d.name(), Name(d.kind()), d.address(), Range(d.plan().sip()), Range(d.plan().rtp()),
           std::to_string(d.mappings_active()) + "/" + std::to_string(d.mappings_total())});
  }
  t.Print(std::cout);
}

void ShowDevice(const DeviceFlags& f, const Options& o, const Channel& channel) {
  v1::GetDeviceRequest req;
  req.set_name(f.name);
  v1::GetDeviceResponse resp;
  Check(v1::DeviceService::NewStub(channel)->GetDevice(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp) << "\n";
  } else {
    PrintDevice(resp.device());
    std::cout << "\n";
    PrintMappings(resp.mappings(), std::cout);
  }
}

void RemoveDevice(const DeviceFlags& f, const Options& o, const Channel& channel) {
  v1::RemoveDeviceRequest req;
  req.set_name(f.name);
  v1::RemoveDeviceResponse resp;
  Check(v1::DeviceService::NewStub(channel)->RemoveDevice(Ctx().get(), req, &resp), o);
  if (o.json) {
    std::cout << "{\"removed\":\"" << f.name << "\"}\n";
  } else {
    std::cout << "removed " << f.name << "; its gateway entries are being deleted\n";
  }
}

CLI::App* AddAddCommand(CLI::App* device, DeviceFlags& f) {
  auto* add = device->add_subcommand("add", "register a device and forward its SIP and RTP ports");
  add->add_option("NAME", f.name, "device name")->required();
  add->add_option("--address", f.address, "the device's IPv4 LAN address")->required();
  add->add_option("--kind", f.kind, "ata, pbx, phone or other");
  add->add_option("--sip", f.plan.sip, "SIP ports, FIRST-LAST (default 5060-5070)");
  add->add_option("--sip-transports", f.plan.transports, "udp, tcp or udp,tcp (default both)");
  add->add_option("--rtp", f.plan.rtp, "RTP ports on UDP, FIRST-LAST (default 10000-10099)");
  add->add_option("--description", f.description, "free text for people (at most 200 bytes)");
  return add;
}

CLI::App* AddUpdateCommand(CLI::App* device, DeviceFlags& f) {
  auto* update = device->add_subcommand("update", "change a device's kind, address or port plan");
  update->add_option("NAME", f.name, "device name")->required();
  update->add_option("--address", f.address, "new IPv4 LAN address");
  update->add_option("--kind", f.kind, "ata, pbx, phone or other");
  update->add_option("--sip", f.plan.sip, "SIP ports, FIRST-LAST");
  update->add_option("--sip-transports", f.plan.transports, "udp, tcp or udp,tcp");
  update->add_option("--rtp", f.plan.rtp, "RTP ports on UDP, FIRST-LAST");
  update->add_option("--description", f.description, "free text for people (at most 200 bytes)");
  update->add_flag("--forget-identity", f.forget_identity,
                   "forget the recorded MAC and lift a suspension (admin)");
  return update;
}

}  // namespace

void AddDeviceCommands(CLI::App& app, Commands& commands) {
  auto* device = app.add_subcommand("device", "register, list, show, update and remove devices");
  device->require_subcommand(1);
  device->fallthrough();
  // Kept alive by the handlers; CLI11 fills them in while parsing.
  auto f = std::make_shared<DeviceFlags>();
  auto* add = AddAddCommand(device, *f);
  auto* update = AddUpdateCommand(device, *f);
  auto* token = device->add_subcommand("token", "issue a new API token for a device (admin)");
  token->add_option("NAME", f->name, "device name")->required();
  auto* list = device->add_subcommand("list", "list devices");
  auto* show = device->add_subcommand("show", "show a device and its mappings");
  show->add_option("NAME", f->name, "device name")->required();
  auto* rm = device->add_subcommand("rm", "remove a device and delete its gateway entries");
  rm->add_option("NAME", f->name, "device name")->required();

  commands.Add(add, [f](const Options& o, const Channel& c) { RegisterDevice(*f, o, c); });
  commands.Add(token, [f](const Options& o, const Channel& c) { ResetToken(*f, o, c); });
  commands.Add(update, [f, update](const Options& o, const Channel& c) {
    UpdateDevice(*f, update->count("--description") > 0, o, c);
  });
  commands.Add(list, ListDevices);
  commands.Add(show, [f](const Options& o, const Channel& c) { ShowDevice(*f, o, c); });
  commands.Add(rm, [f](const Options& o, const Channel& c) { RemoveDevice(*f, o, c); });
}

}  // namespace natpilot::cli
