#include "mapping/static_rules.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/event_kinds.h"

namespace natpilot {

Result<rules::RulesInput> StaticRulesInput(const Store& store, bool all_devices, TimePoint now) {
  rules::RulesInput in;
  in.registry_version = store.RegistryVersion();
  in.generated_at = now;
  std::set<std::string> needed;
  if (!all_devices) {
    auto mappings = store.ListMappings("");
    if (!mappings) return tl::unexpected(mappings.error());
    for (const Mapping& m : *mappings) {
      const bool fallback =
          m.state == MappingState::kStaticRule || m.state == MappingState::kUnmapped;
      if (fallback && !m.released) needed.insert(m.device);
    }
  }
  for (Device& d : store.ListDevices()) {
    if (all_devices || needed.count(d.name)) in.devices.push_back(std::move(d));
  }
  return in;
}

Result<void> WriteFileAtomically(const std::string& path, const std::string& text) {
  // A name nobody can guess, created with O_EXCL (mkstemp) and never through a symlink: a link
  // planted at a predictable PATH.tmp would make natpilotd (often root) overwrite its target.
  std::string tmp = path + ".XXXXXX";
  auto fail = [&](const char* what) {
    const std::string msg = std::string(what) + " " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return Fail(Errc::kUnavailable, msg);
  };
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    const std::string msg =
        "cannot create a temporary file next to " + path + ": " + std::strerror(errno);
    return Fail(Errc::kUnavailable, msg);
  }
  if (::fchmod(fd, 0644) != 0) {
    ::close(fd);
    return fail("cannot set the mode of");
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("cannot fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename");
  // The rename itself is durable once the folder is synced.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

RulesWriter::RulesWriter(Store& store, StaticRulesOptions options, NowFn now)
    : store_(store), options_(std::move(options)), now_(std::move(now)) {}

void RulesWriter::Refresh() {
  if (options_.folder.empty()) return;
  try {
    auto read = StaticRulesInput(store_, false, now_());
    if (!read) {
      spdlog::warn("static rules: cannot read the mappings ({}); the files stay as they are",
                   read.error().message);
      return;
    }
    const rules::RulesInput& in = *read;
    std::string fingerprint;
    for (const Device& d : in.devices) {
      fingerprint += d.name + "|" + d.address + "|" + ToString(d.plan.sip) +
                     (d.plan.sip_udp ? "u" : "") + (d.plan.sip_tcp ? "t" : "") + "|" +
                     ToString(d.plan.rtp) + ";";
    }
    if (fingerprint == last_fingerprint_) return;
    std::vector<Event> events;
    std::error_code ec;
    std::filesystem::create_directories(options_.folder, ec);
    std::string written;
    for (auto format :
         {rules::Format::kNftables, rules::Format::kIptables, rules::Format::kOpenwrt}) {
      const std::string path =
          (std::filesystem::path(options_.folder) / rules::FileName(format)).string();
      auto text = rules::Generate(format, in, options_.params);
      Result<void> ok =
          text ? WriteFileAtomically(path, *text) : Result<void>(tl::unexpected(text.error()));
      if (!ok) {
        events.push_back(
            Event{0, now_(), event::kRulesWriteFailed, "", "natpilotd", ok.error().message});
        continue;
      }
      written += (written.empty() ? "" : ", ") + path;
    }
    if (!written.empty()) {
      events.push_back(
          Event{0, now_(), event::kRulesWritten, "", "natpilotd",
                std::to_string(in.devices.size()) + " devices need static rules; wrote " + written +
                    " (registry version " + std::to_string(in.registry_version) + ")"});
      last_fingerprint_ = fingerprint;
    }
    for (const Event& e : events) spdlog::info("{}: {}", e.kind, e.message);
    (void)store_.AppendEvents(std::move(events));
  } catch (const std::exception& e) {
    // A store read that threw (sqlite::SqliteError is one): nothing written, tried after the next
    // pass.
    spdlog::error("writing static rules to {} failed (tried again after the next pass): {}",
                  options_.folder, e.what());
  } catch (...) {
    spdlog::error(
        "writing static rules to {} failed (tried again after the next pass): unknown exception",
        options_.folder);
  }
}

}  // namespace natpilot
