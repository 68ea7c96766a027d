// natpilot events: the event log, and with --follow the events as they happen.
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "natpilot/v1/natpilot.grpc.pb.h"
#include "output.h"

namespace natpilot::cli {
namespace {

struct EventFlags {
  bool follow = false;
  uint32_t backlog = 20;
};

void PrintEvent(const v1::Event& e, bool json) {
  if (json) {
    std::cout << ToJson(e) << std::endl;
    return;
  }
  std::cout << Time(e.at()) << "  " << e.kind() << "  "
            << (e.device().empty() ? "" : e.device() + "  ") << e.message() << "  (by "
            << e.caller() << ")" << std::endl;
}

void Events(const EventFlags& f, const Options& o, const Channel& channel) {
  auto ev = v1::EventService::NewStub(channel);
  if (!f.follow) {
    v1::ListEventsRequest req;
    req.set_limit(f.backlog);
    v1::ListEventsResponse resp;
    Check(ev->ListEvents(Ctx().get(), req, &resp), o);
    for (const auto& e : resp.events()) PrintEvent(e, o.json);
  } else {
    v1::WatchEventsRequest req;
    req.set_backlog(f.backlog);
    auto ctx = Ctx(0);
    auto reader = ev->WatchEvents(ctx.get(), req);
    v1::Event e;
    while (reader->Read(&e)) PrintEvent(e, o.json);
    Check(reader->Finish(), o);
  }
}

}  // namespace

void AddEventCommands(CLI::App& app, Commands& commands) {
  auto* events = app.add_subcommand("events", "show events; --follow streams new ones");
  // Kept alive by the handler; CLI11 fills it in while parsing.
  auto f = std::make_shared<EventFlags>();
  events->add_flag("-f,--follow", f->follow, "keep streaming new events");
  events->add_option("-n,--backlog", f->backlog, "how many past events to show first")
      ->capture_default_str();
  commands.Add(events, [f](const Options& o, const Channel& c) { Events(*f, o, c); });
}

}  // namespace natpilot::cli
