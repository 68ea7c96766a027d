#include "identity/identity_watch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/event_kinds.h"
#include "portmap/netutil.h"

namespace natpilot {
namespace {

std::string FormatTime(TimePoint t) {
  const std::time_t tt = Clock::to_time_t(t);
  char buf[32];
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

IdentityWatch::IdentityWatch(Store& store, IdentityOptions options, NeighborFn neighbors, NowFn now,
                             std::function<void()> on_change)
    : store_(store),
      options_(options),
      neighbors_(std::move(neighbors)),
      now_(std::move(now)),
      on_change_(std::move(on_change)) {}

IdentityWatch::~IdentityWatch() { Stop(); }

int IdentityWatch::CheckOnce() {
  const std::vector<Device> devices = store_.ListDevices();
  if (devices.empty()) return 0;
  std::vector<std::string> addresses;
  for (const Device& d : devices) addresses.push_back(d.address);
  const std::vector<NeighborAnswer> answers = neighbors_(addresses);
  const TimePoint now = now_();
  int changed = 0;
  for (size_t i = 0; i < devices.size() && i < answers.size(); ++i) {
    const Device& d = devices[i];
    const NeighborAnswer& a = answers[i];
    auto seen = last_seen_.try_emplace(d.name, now).first;
    std::string mac = d.mac;
    std::string suspended = d.suspended;
    Event event{0, now, "", d.name, "natpilotd", ""};
    if (a.kind == NeighborAnswer::Kind::kOffLink) continue;  // not on our link: cannot tell
    if (a.kind == NeighborAnswer::Kind::kAnswered) {
      if (d.mac.empty()) {
        mac = a.mac;
        event.kind = event::kDeviceIdentified;
        event.message = d.address + " answers from MAC " + a.mac + "; recorded as this device";
      } else if (a.mac == d.mac) {
        seen->second = now;
        if (!d.suspended.empty()) {
          suspended.clear();
          event.kind = event::kDeviceResumed;
          event.message = d.address + " answers again from the registered MAC " + d.mac +
                          "; its mappings are requested again";
        }
      } else if (d.suspended.empty() || d.suspended.rfind("no answer", 0) == 0) {
        suspended = d.address + " now answers from MAC " + a.mac + ", not the registered MAC " +
                    d.mac +
                    "; another host may have the address (update the device with "
                    "--forget-identity to accept it)";
        event.kind = event::kDeviceSuspended;
        event.message = suspended;
      }
    } else if (!d.mac.empty() && d.suspended.empty() && options_.absent_after.count() > 0 &&
               now - seen->second >= options_.absent_after) {
      suspended =
          "no answer from " + d.address + " (MAC " + d.mac + ") since " + FormatTime(seen->second) +
          " (identity.absent_after_s = " + std::to_string(options_.absent_after.count()) + ")";
      event.kind = event::kDeviceSuspended;
      event.message = suspended;
    }
    if (event.kind.empty()) continue;
    if (store_.SetDeviceIdentity(d.name, mac, suspended, {event})) ++changed;
  }
  // Forget devices that are gone.
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    bool present = false;
    for (const Device& d : devices) present = present || d.name == it->first;
    it = present ? std::next(it) : last_seen_.erase(it);
  }
  if (changed > 0 && on_change_) on_change_();
  return changed;
}

void IdentityWatch::Start() {
  if (!options_.enabled) return;
  worker_.Start([this]() -> std::optional<Worker::Duration> {
    CheckOnce();
    return options_.check_interval;
  });
}

void IdentityWatch::Stop() { worker_.Stop(); }

void IdentityWatch::Wake() { worker_.Wake(); }

std::map<std::string, std::string> ParseArpTable(std::string_view text) {
  // "IP address  HW type  Flags  HW address  Mask  Device", one entry per line after the header.
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(text)};
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string ip, hwtype, flags, mac;
    if (!(fields >> ip >> hwtype >> flags >> mac)) continue;
    unsigned long f = 0;
    try {
      f = std::stoul(flags, nullptr, 16);
    } catch (const std::exception&) {
      continue;
    }
    constexpr unsigned long kComplete = 0x2;  // ATF_COM
    if ((f & kComplete) == 0 || mac.size() != 17 || mac == "00:00:00:00:00:00") continue;
    out[ip] = mac;
  }
  return out;
}

std::vector<NeighborAnswer> ProbeNeighbors(const std::vector<std::string>& addresses) {
  std::vector<NeighborAnswer> out(addresses.size());
  const std::vector<Subnet> subnets = HostLanSubnets();
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  bool any = false;
  for (size_t i = 0; i < addresses.size(); ++i) {
    in_addr a{};
    if (inet_pton(AF_INET, addresses[i].c_str(), &a) != 1) continue;
    bool on_link = false;
    for (const Subnet& s : subnets) on_link = on_link || s.contains(ntohl(a.s_addr));
    if (!on_link) {
      out[i].kind = NeighborAnswer::Kind::kOffLink;
      continue;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);  // discard
    to.sin_addr = a;
    if (fd >= 0) ::sendto(fd, "", 0, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    any = true;
  }
  if (fd >= 0) ::close(fd);
  if (!any) return out;
  // Resolution of an unknown or failed entry takes up to a second per solicitation.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::ifstream arp("/proc/net/arp");
  std::stringstream ss;
  ss << arp.rdbuf();
  const auto table = ParseArpTable(ss.str());
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (out[i].kind == NeighborAnswer::Kind::kOffLink) continue;
    auto it = table.find(addresses[i]);
    if (it != table.end()) out[i] = {NeighborAnswer::Kind::kAnswered, it->second};
  }
  return out;
}

}  // namespace natpilot
