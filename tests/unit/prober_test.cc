#include "portmap/prober.h"

#include <gtest/gtest.h>

#include "fake_gateway.h"

namespace natpilot {
namespace {

using testing::FakeGateway;
using namespace std::chrono_literals;

struct Three {
  FakeGateway pcp, natpmp, upnp;
  Three() {
    pcp.kind = GatewayProtocol::kPcp;
    natpmp.kind = GatewayProtocol::kNatPmp;
    upnp.kind = GatewayProtocol::kUpnpIgd;
  }
  std::vector<PortMapper*> All() { return {&pcp, &natpmp, &upnp}; }
};

TEST(Prober, PrefersTheFirstProtocolThatAnswers) {
  Three g;
  Prober prober(g.All(), 50ms);
  EXPECT_EQ(prober.Run(), 0);
  EXPECT_TRUE(prober.Usable(0));
}

TEST(Prober, DoesNotWaitForASlowLessPreferredProtocol) {
  Three g;
  g.upnp.probe_delay = 600ms;  // SSDP's fixed delay and more
  Prober prober(g.All(), 50ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(prober.Run(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms);
  EXPECT_FALSE(prober.Reports()[2].done) << "UPnP is still probing";
  EXPECT_FALSE(prober.Usable(2)) << "not usable until its own probe has finished";
}

TEST(Prober, WaitsOnlyTheWindowForAMorePreferredOne) {
  Three g;
  g.pcp.probe_delay = 800ms;  // slower than the window
  Prober prober(g.All(), 50ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(prober.Run(), 1) << "NAT-PMP, once the window for PCP is over";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

TEST(Prober, TakesAMorePreferredAnswerWithinTheWindow) {
  Three g;
  g.pcp.probe_delay = 20ms;
  Prober prober(g.All(), 300ms);
  EXPECT_EQ(prober.Run(), 0);
}

TEST(Prober, NoneUsableWhenNothingAnswers) {
  Three g;
  g.pcp.reachable = g.natpmp.reachable = g.upnp.reachable = false;
  Prober prober(g.All(), 50ms);
  EXPECT_EQ(prober.Run(), -1);
  for (const auto& r : prober.Reports()) EXPECT_TRUE(r.done);
}

}  // namespace
}  // namespace natpilot
