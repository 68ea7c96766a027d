// natpilot gateway: the gateway natpilotd found and how each protocol's probe went.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"

namespace natpilot::cli {
namespace {

void PrintGateway(const v1::Gateway& g) {
  Table t({"FIELD", "VALUE"});
  t.Add({"status", Name(g.status())});
  t.Add({"protocol", Name(g.protocol())});
  t.Add({"gateway", g.address().empty() ? "-" : g.address()});
  t.Add({"control url", g.control_url().empty() ? "-" : g.control_url()});
  t.Add({"external address", g.external_address().empty() ? "-" : g.external_address()});
  t.Add({"local address", g.local_address().empty() ? "-" : g.local_address()});
  t.Add({"detail", g.detail()});
  t.Add({"checked", Time(g.checked_at())});
  t.Add({"next check", Time(g.next_check_at())});
  t.Print(std::cout);
  std::cout << "\n";
  Table probes({"PROTOCOL", "ANSWERED", "TOOK", "EXTERNAL ADDRESS", "DETAIL"});
  for (const auto& p : g.protocols()) {
    probes.Add({Name(p.protocol()), p.finished() ? (p.answered() ? "yes" : "no") : "probing",
                std::to_string(p.took_ms()) + " ms",
                p.external_address().empty() ? "-" : p.external_address(), p.detail()});
  }
  probes.Print(std::cout);
  PrintOtherIgds(g, std::cout);
}

void ShowGateway(bool rediscover, const Options& o, const Channel& channel) {
  auto gw = v1::GatewayService::NewStub(channel);
  if (rediscover) {
    v1::RediscoverGatewayResponse r;
    Check(gw->RediscoverGateway(Ctx().get(), {}, &r), o);
  }
  v1::GetGatewayResponse resp;
  Check(gw->GetGateway(Ctx().get(), {}, &resp), o);
  if (o.json) {
    std::cout << ToJson(resp.gateway()) << "\n";
  } else {
    PrintGateway(resp.gateway());
  }
}

}  // namespace

void AddGatewayCommands(CLI::App& app, Commands& commands) {
  auto* gateway =
      app.add_subcommand("gateway", "show the gateway: protocol, control URL, external address");
  // Kept alive by the handler; CLI11 fills it in while parsing.
  auto rediscover = std::make_shared<bool>(false);
  gateway->add_flag("--rediscover", *rediscover, "probe the gateway again now");
  commands.Add(gateway, [rediscover](const Options& o, const Channel& c) {
    ShowGateway(*rediscover, o, c);
  });
}

}  // namespace natpilot::cli
