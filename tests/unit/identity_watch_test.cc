// The identity watch with a scripted neighbour table and an injected clock, over a real store.
#include "identity/identity_watch.h"

#include <gtest/gtest.h>

#include "store/sqlite_store.h"

namespace natpilot {
namespace {

using Kind = NeighborAnswer::Kind;

class IdentityWatchTest : public ::testing::Test {
 protected:
  IdentityWatchTest()
      : store_(StoreOptions{":memory:"}),
        watch_(
            store_, IdentityOptions{true, Seconds(30), Seconds(600)},
            [this](const std::vector<std::string>& addrs) {
              asked_ = addrs;
              return std::vector<NeighborAnswer>(addrs.size(), answer_);
            },
            [this] { return now_; }, [this] { ++wakes_; }) {
    Device d;
    d.name = "ata1";
    d.address = "192.168.1.20";
    d.plan.sip = {5060, 5060};
    d.plan.rtp = {10000, 10001};
    EXPECT_TRUE(store_.AddDevice(d, Event{0, now_, "device.registered", "ata1", "t", ""}));
  }
  Device Ata() { return *store_.GetDevice("ata1"); }
  std::vector<Mapping> Mappings() { return store_.ListMappings("ata1").value(); }
  std::string LastEventKind() { return store_.ListEvents(0, 1).back().kind; }

  SqliteStore store_;
  IdentityWatch watch_;
  NeighborAnswer answer_{Kind::kSilent, ""};
  std::vector<std::string> asked_;
  TimePoint now_{Seconds(1700000000)};
  int wakes_ = 0;
};

TEST_F(IdentityWatchTest, LearnsTheMacThenSuspendsWhenAnotherMacAnswersAndResumes) {
  answer_ = {Kind::kAnswered, "02:00:00:00:00:0a"};
  EXPECT_EQ(watch_.CheckOnce(), 1);
  EXPECT_EQ(asked_, std::vector<std::string>{"192.168.1.20"});
  EXPECT_EQ(Ata().mac, "02:00:00:00:00:0a");
  EXPECT_EQ(LastEventKind(), "device.identified");
  EXPECT_EQ(watch_.CheckOnce(), 0);  // same MAC: nothing to say

  answer_ = {Kind::kAnswered, "02:00:00:00:00:bb"};
  EXPECT_EQ(watch_.CheckOnce(), 1);
  EXPECT_NE(Ata().suspended.find("now answers from MAC 02:00:00:00:00:bb"), std::string::npos)
      << Ata().suspended;
  EXPECT_EQ(LastEventKind(), "device.suspended");
  EXPECT_EQ(Ata().mac, "02:00:00:00:00:0a");  // the registered MAC stays
  for (const Mapping& m : Mappings()) EXPECT_TRUE(m.released);
  EXPECT_EQ(watch_.CheckOnce(), 0);  // still the other host: no repeated events

  answer_ = {Kind::kAnswered, "02:00:00:00:00:0a"};
  EXPECT_EQ(watch_.CheckOnce(), 1);
  EXPECT_TRUE(Ata().suspended.empty());
  EXPECT_EQ(LastEventKind(), "device.resumed");
  for (const Mapping& m : Mappings()) EXPECT_FALSE(m.released);
  EXPECT_EQ(wakes_, 3);
}

TEST_F(IdentityWatchTest, SilenceSuspendsOnlyAfterTheConfiguredTime) {
  answer_ = {Kind::kAnswered, "02:00:00:00:00:0a"};
  watch_.CheckOnce();
  answer_ = {Kind::kSilent, ""};
  now_ += Seconds(599);
  EXPECT_EQ(watch_.CheckOnce(), 0);
  EXPECT_TRUE(Ata().suspended.empty());
  now_ += Seconds(1);
  EXPECT_EQ(watch_.CheckOnce(), 1);
  EXPECT_NE(Ata().suspended.find("no answer from 192.168.1.20"), std::string::npos)
      << Ata().suspended;
  // Silence that turns out to be another host: the reason is replaced by the stronger one.
  answer_ = {Kind::kAnswered, "02:00:00:00:00:cc"};
  EXPECT_EQ(watch_.CheckOnce(), 1);
  EXPECT_NE(Ata().suspended.find("02:00:00:00:00:cc"), std::string::npos);
}

TEST_F(IdentityWatchTest, OffLinkAndNeverSeenDevicesAreLeftAlone) {
  answer_ = {Kind::kOffLink, ""};
  EXPECT_EQ(watch_.CheckOnce(), 0);
  answer_ = {Kind::kSilent, ""};
  now_ += Seconds(100000);
  EXPECT_EQ(watch_.CheckOnce(), 0);  // no MAC was ever recorded: nothing to compare
  EXPECT_TRUE(Ata().suspended.empty());
  EXPECT_EQ(wakes_, 0);
}

TEST(ParseArpTable, KeepsCompleteEntriesOnly) {
  const std::string text =
      "IP address       HW type     Flags       HW address            Mask     Device\n"
      "192.168.50.10    0x1         0x2         02:aa:bb:cc:dd:ee     *        eth0\n"
      "192.168.50.11    0x1         0x0         00:00:00:00:00:00     *        eth0\n"
      "192.168.50.12    0x1         0x6         02:aa:bb:cc:dd:ff     *        eth0\n"
      "garbage line\n"
      "192.168.50.13    0x1         zz          02:aa:bb:cc:dd:00     *        eth0\n";
  const auto table = ParseArpTable(text);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.at("192.168.50.10"), "02:aa:bb:cc:dd:ee");
  EXPECT_EQ(table.at("192.168.50.12"), "02:aa:bb:cc:dd:ff");
}

}  // namespace
}  // namespace natpilot
