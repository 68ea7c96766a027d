// The [[pbx]] notifier over a real store: files written when the view's facts change (and only
// then), the hook's run recorded, a hanging hook killed and reported.
#include "pbx/pbx_notifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/text.h"
#include "faults.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class PbxNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("natpilot-pbx-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Device d;
    d.name = "pbx1";
    d.address = "192.168.50.2";
    d.plan.sip = {5080, 5080};
    d.plan.sip_tcp = false;
    d.plan.rtp = {12000, 12001};
    ASSERT_TRUE(store_.AddDevice(d, Event{0, Clock::now(), "device.registered", "pbx1", "t", ""}));
    gateway_.info.external_address = "203.0.113.1";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Activate() {
    auto ms = store_.ListMappings("pbx1").value();
    for (auto& m : ms) {
      m.state = MappingState::kActive;
      m.protocol = GatewayProtocol::kPcp;
      m.external_address = "203.0.113.1";
      m.expires_at = Clock::now() + Seconds(3600);
    }
    ASSERT_TRUE(store_.SaveMappings(ms, {}));
  }
  PbxNotifier Make(std::vector<std::string> hook, Seconds timeout = Seconds(5)) {
    PbxTarget t;
    t.device = "pbx1";
    t.flavor = pbx::Flavor::kAsterisk;
    t.file = (dir_ / "pjsip.conf").string();
    t.rtp_file = (dir_ / "rtp.conf").string();
    t.on_change = std::move(hook);
    t.hook_timeout = timeout;
    return PbxNotifier(
        store_,
        [this] {
          return NatViewInputs{store_, gateway_, "", {}};
        },
        {t}, [] { return Clock::now(); });
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::vector<std::string> Kinds() {
    std::vector<std::string> out;
    for (const Event& e : store_.ListEvents(0, 100)) {
      if (e.kind.rfind("pbx.", 0) == 0) out.push_back(e.kind + " " + e.message);
    }
    return out;
  }

  std::filesystem::path dir_;
  SqliteStore store_{StoreOptions{":memory:"}};
  GatewaySnapshot gateway_;
};

TEST_F(PbxNotifierTest, WritesTheFilesAndRunsTheHookWhenTheFactsChangeOnly) {
  const std::string env_file = (dir_ / "hook.env").string();
  auto notifier = Make({"/bin/sh", "-c",
                        "echo \"$NATPILOT_EXTERNAL_ADDRESS $NATPILOT_RTP_START-$NATPILOT_RTP_END "
                        "$NATPILOT_COMPLETE\" >> '" +
                            env_file + "'"});
  EXPECT_EQ(notifier.RunOnce(), 1);  // pending: written as not complete
  EXPECT_NE(Read("pjsip.conf").find("NOT COMPLETE"), std::string::npos);
  Activate();
  EXPECT_EQ(notifier.RunOnce(), 1);
  EXPECT_NE(Read("pjsip.conf").find("external_media_address = 203.0.113.1"), std::string::npos)
      << Read("pjsip.conf");
  EXPECT_EQ(Read("pjsip.conf").find("NOT COMPLETE"), std::string::npos);
  EXPECT_NE(Read("rtp.conf").find("rtpstart = 12000\nrtpend = 12001"), std::string::npos);
  EXPECT_EQ(Read("hook.env"), "203.0.113.1 12000-12001 0\n203.0.113.1 12000-12001 1\n");
  EXPECT_EQ(notifier.RunOnce(), 0);  // nothing changed: no file, no hook
  // A new external address is a change: the gateway's (one fact), before any lease is renewed.
  gateway_.info.external_address = "198.51.100.9";
  EXPECT_EQ(notifier.RunOnce(), 1);
  EXPECT_NE(Read("hook.env").find("198.51.100.9 12000-12001 1"), std::string::npos);
  const auto kinds = Kinds();
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.back().rfind("pbx.hook-ran /bin/sh: exit 0", 0), 0u) << kinds.back();
}

TEST_F(PbxNotifierTest, AFailingOrHangingHookIsReported) {
  auto failing = Make({"/bin/sh", "-c", "echo no asterisk here; exit 7"});
  Activate();
  failing.RunOnce();
  EXPECT_EQ(Kinds().back(), "pbx.hook-failed /bin/sh: exit 7; output: no asterisk here");
  auto hanging = Make({"/bin/sh", "-c", "sleep 30"}, Seconds(1));
  hanging.RunOnce();
  EXPECT_EQ(Kinds().back(), "pbx.hook-failed /bin/sh: killed after the 1 s timeout");
  auto missing = Make({"/nonexistent/reload"});
  missing.RunOnce();
  EXPECT_NE(Kinds().back().find("pbx.hook-failed /nonexistent/reload: cannot run"),
            std::string::npos)
      << Kinds().back();
}

// A hook's output is foreign text: ESC sequences and invalid UTF-8 do not reach the events.
TEST_F(PbxNotifierTest, AHooksOutputIsMadeSafeBeforeItIsRecorded) {
  auto hostile =
      Make({"/bin/sh", "-c", "printf 'reload \\033[31mred\\033[0m \\377\\376 done'; exit 3"});
  Activate();
  hostile.RunOnce();
  const std::string last = Kinds().back();
  EXPECT_EQ(last.find('\x1b'), std::string::npos) << last;
  EXPECT_EQ(UnsafeTextReason(last), "") << last;
  EXPECT_NE(last.find("output: reload \xef\xbf\xbd[31mred"), std::string::npos) << last;
}

TEST_F(PbxNotifierTest, AFailedPassIsLoggedAndTriedAgainWithoutANewEvent) {
  testing::LogCapture log;
  std::atomic<bool> failing{true};
  PbxTarget t;
  t.device = "pbx1";
  t.flavor = pbx::Flavor::kJson;
  t.file = (dir_ / "pbx1.json").string();
  PbxNotifier notifier(
      store_,
      [&] {
        if (failing) throw std::runtime_error("database disk image is malformed");
        return NatViewInputs{store_, gateway_, "", {}};
      },
      {t}, [] { return Clock::now(); });
  notifier.Start();  // the first pass runs at once, and fails
  ASSERT_TRUE(testing::WaitUntil([&] { return log.Contains("pbx notifier: a pass failed"); }))
      << log.All();
  EXPECT_TRUE(log.Contains("database disk image is malformed")) << log.All();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "pbx1.json"));
  failing = false;
  // No event comes: the retry after a failed pass (5 s) writes the file.
  EXPECT_TRUE(testing::WaitUntil([&] { return std::filesystem::exists(dir_ / "pbx1.json"); },
                                 std::chrono::seconds(15)));
  notifier.Stop();
  EXPECT_NE(Read("pbx1.json").find("\"device\""), std::string::npos) << Read("pbx1.json");
}

}  // namespace
}  // namespace natpilot
