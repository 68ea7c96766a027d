#include "mapping/static_rules.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class StaticRulesTest : public ::testing::Test {
 protected:
  StaticRulesTest() : store_(StoreOptions{":memory:", 1000, Seconds(86400)}) {
    folder_ =
        std::filesystem::temp_directory_path() / ("natpilot-rules-" + std::to_string(::getpid()));
    Add("ata1", "192.168.1.20", {5060, 5070}, {10000, 10099});
    Add("pbx1", "192.168.1.2", {5080, 5081}, {12000, 12009});
  }
  ~StaticRulesTest() override { std::filesystem::remove_all(folder_); }
  void Add(const std::string& name, const std::string& addr, PortRange sip, PortRange rtp) {
    Device d;
    d.name = name;
    d.address = addr;
    d.plan.sip = sip;
    d.plan.rtp = rtp;
    ASSERT_TRUE(store_.AddDevice(d, Event{0, now_, "device.registered", name, "t", ""}));
  }
  void SetState(const std::string& device, MappingState state) {
    auto ms = *store_.ListMappings(device);
    for (auto& m : ms) m.state = state;
    ASSERT_TRUE(store_.SaveMappings(ms, {}));
  }
  std::string Read(const char* file) {
    std::ifstream in(folder_ / file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  int Written() {
    int n = 0;
    for (const auto& e : store_.ListEvents(0, 1000)) n += e.kind == "rules.written";
    return n;
  }
  TimePoint now_{Seconds(1764100000)};
  SqliteStore store_;
  std::filesystem::path folder_;
};

TEST_F(StaticRulesTest, OnlyDevicesThatNeedStaticRulesAreForwarded) {
  SetState("ata1", MappingState::kActive);
  SetState("pbx1", MappingState::kStaticRule);
  auto in = StaticRulesInput(store_, false, now_);
  ASSERT_TRUE(in);
  ASSERT_EQ(in->devices.size(), 1u);
  EXPECT_EQ(in->devices[0].name, "pbx1");
  SetState("ata1", MappingState::kUnmapped);  // no usable gateway
  EXPECT_EQ(StaticRulesInput(store_, false, now_)->devices.size(), 2u);
  SetState("ata1", MappingState::kActive);
  EXPECT_EQ(StaticRulesInput(store_, true, now_)->devices.size(), 2u);
}

// A symlink planted where a predictable temporary file would go does not make the writer
// overwrite its target; the file lands whole, with mode 0644, and no temporary file stays behind.
TEST_F(StaticRulesTest, APlantedSymlinkIsNotFollowed) {
  std::filesystem::create_directories(folder_);
  const auto victim = folder_ / "victim";
  { std::ofstream(victim) << "precious\n"; }
  const auto target = folder_ / "natpilot.nft";
  std::filesystem::create_symlink(victim, target.string() + ".tmp");
  ASSERT_TRUE(WriteFileAtomically(target.string(), "table ip natpilot {}\n"));
  std::ifstream v(victim);
  std::string line;
  std::getline(v, line);
  EXPECT_EQ(line, "precious");
  std::ifstream t(target);
  std::getline(t, line);
  EXPECT_EQ(line, "table ip natpilot {}");
  EXPECT_EQ(std::filesystem::status(target).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0644));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(folder_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 3u);  // the victim, the planted link, the file: no temporary left
}

TEST_F(StaticRulesTest, TheWriterKeepsTheFolderCurrentAndSaysSo) {
  StaticRulesOptions options;
  options.folder = folder_.string();
  RulesWriter writer(store_, options, [this] { return now_; });
  SetState("ata1", MappingState::kActive);
  SetState("pbx1", MappingState::kStaticRule);
  writer.Refresh();
  EXPECT_EQ(Written(), 1);
  EXPECT_NE(Read("natpilot.nft").find("dnat to 192.168.1.2"), std::string::npos);
  EXPECT_EQ(Read("natpilot.nft").find("192.168.1.20"), std::string::npos);
  EXPECT_NE(Read("natpilot.iptables").find("--to-destination 192.168.1.2"), std::string::npos);
  EXPECT_NE(Read("natpilot.uci").find("option dest_ip '192.168.1.2'"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(folder_ / "natpilot.nft.tmp"));

  writer.Refresh();  // nothing changed: no rewrite, no event
  EXPECT_EQ(Written(), 1);

  SetState("ata1", MappingState::kStaticRule);
  writer.Refresh();
  EXPECT_EQ(Written(), 2);
  EXPECT_NE(Read("natpilot.nft").find("dnat to 192.168.1.20"), std::string::npos);
}

TEST_F(StaticRulesTest, AnUnwritableFolderIsAnEventNotACrash) {
  StaticRulesOptions options;
  options.folder = "/proc/natpilot-cannot-be-here";
  RulesWriter writer(store_, options, [this] { return now_; });
  SetState("pbx1", MappingState::kStaticRule);
  writer.Refresh();
  int failed = 0;
  for (const auto& e : store_.ListEvents(0, 1000)) failed += e.kind == "rules.write-failed";
  EXPECT_EQ(failed, 3);
  EXPECT_EQ(Written(), 0);
}

}  // namespace
}  // namespace natpilot
