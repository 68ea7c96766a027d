// core/text.h: foreign text made safe on its exact bytes.
#include "core/text.h"

#include <gtest/gtest.h>

#include <string>

#include "api/nat_view.h"
#include "core/validate.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

const std::string kFffd = "\xef\xbf\xbd";

TEST(SafeText, KeepsValidTextAndReplacesEachUnsafeSpot) {
  EXPECT_EQ(SafeText("Büro-ATA 1 — Küche ☎"), "Büro-ATA 1 — Küche ☎");
  EXPECT_EQ(SafeText("a\x1b[2Jb"), "a" + kFffd + "[2Jb");          // ESC
  EXPECT_EQ(SafeText(std::string("a\0b", 3)), "a" + kFffd + "b");  // NUL is not the end
  EXPECT_EQ(SafeText("a\nb\rc\td"), "a" + kFffd + "b" + kFffd + "c" + kFffd + "d");
  EXPECT_EQ(SafeText("a\x7f"
                     "b"),
            "a" + kFffd + "b");  // DEL
  EXPECT_EQ(SafeText("a\xc2\x9b"
                     "b"),
            "a" + kFffd + "b");  // C1 CSI
  EXPECT_EQ(SafeText("a\xe2\x80\xae"
                     "b"),
            "a" + kFffd + "b");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(SafeText("a\xff"
                     "b"),
            "a" + kFffd + "b");  // not UTF-8 at all
  EXPECT_EQ(SafeText("a\xc0\xaf"
                     "b"),
            "a" + kFffd + kFffd + "b");  // overlong '/'
  EXPECT_EQ(SafeText("a\xe0\x80\xaf"
                     "b"),
            "a" + kFffd + kFffd + kFffd + "b");  // overlong, 3 bytes
  EXPECT_EQ(SafeText("a\xed\xa0\x80"
                     "b"),
            "a" + kFffd + kFffd + kFffd + "b");  // a surrogate
  EXPECT_EQ(SafeText("a\xf4\x90\x80\x80"
                     "b"),
            "a" + kFffd + kFffd + kFffd + kFffd + "b");   // > U+10FFFF
  EXPECT_EQ(SafeText("a\xe2\x98"), "a" + kFffd + kFffd);  // cut short
  EXPECT_EQ(UnsafeTextReason(SafeText("\xff\x1b\xc2\x85 any \xf0\x9f\x93\x9e")), "");
}

TEST(SafeText, IsBoundedAndNeverCutsACodePoint) {
  EXPECT_EQ(SafeText(std::string(5000, 'x'), 100).size(), 100u);
  const std::string phones = "☎☎☎☎";  // 3 bytes each
  EXPECT_EQ(SafeText(phones, 7), "☎☎");
  EXPECT_EQ(SafeText("ab\x1b", 4), "ab");  // U+FFFD does not fit in the last 2 bytes
}

TEST(SafeText, ReasonsNameWhatAndWhere) {
  EXPECT_EQ(UnsafeTextReason("fine ☎"), "");
  EXPECT_EQ(UnsafeTextReason("ab\x1b"), "contains control character 0x1b at byte 2");
  EXPECT_EQ(UnsafeTextReason(std::string("ab\0", 3)), "contains a NUL at byte 2");
  EXPECT_EQ(UnsafeTextReason("a\xe2\x80\xae"), "contains control character U+202E at byte 1");
  EXPECT_EQ(UnsafeTextReason("a\xc0\xaf"), "is not valid UTF-8 at byte 1");
  // The device description check uses the same rules.
  EXPECT_FALSE(ValidateDescription("office \xed\xa0\x80"));
  EXPECT_FALSE(ValidateDescription("office \xe2\x80\xae"));
  EXPECT_TRUE(ValidateDescription("Büro ☎"));
}

// What reaches a PBX file or a hook's environment as the external address is a canonical IPv4
// address or nothing, whatever a gateway's snapshot holds.
TEST(SafeText, ANatViewCarriesOnlyACanonicalExternalAddress) {
  SqliteStore store(StoreOptions{":memory:"});
  Device d;
  d.name = "pbx1";
  d.kind = DeviceKind::kPbx;
  d.address = "192.168.1.30";
  d.plan.sip = {5060, 5060};
  d.plan.rtp = {10000, 10001};
  ASSERT_TRUE(store.AddDevice(
      d, Event{0, TimePoint(Seconds(1700000000)), "device.registered", "pbx1", "t", "m"}));
  GatewaySnapshot gw;
  gw.info.status = GatewayInfo::Status::kReady;
  gw.info.external_address = "203.0.113.7";
  auto view = BuildNatView(NatViewInputs{store, gw, "", {}}, "pbx1");
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_EQ(view->external_address(), "203.0.113.7");
  for (const std::string& bad :
       {std::string("203.0.113.7\n[transport-evil]"), std::string("203.0.113.7\0x", 13),
        std::string("203.000.113.7"), std::string("0.0.0.0")}) {
    gw.info.external_address = bad;
    view = BuildNatView(NatViewInputs{store, gw, "", {}}, "pbx1");
    ASSERT_TRUE(view);
    EXPECT_EQ(view->external_address(), "") << bad;
  }
}

}  // namespace
}  // namespace natpilot
