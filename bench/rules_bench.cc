// Rule generation at scale: 500 devices, 11 SIP ports (UDP and TCP) and 100 RTP ports each, on
// disjoint external ports (61,000 forwards). Writes the grouped nftables file natpilot generates
// and, for comparison, a one-rule-per-port file of the same forwards; prints generation times.
// bench/rules.sh then measures nft -c and a real apply of both.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "rules.h"

using natpilot::Device;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: rules_bench OUTDIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  natpilot::rules::RulesInput in;
  for (int i = 0; i < 500; ++i) {
    Device d;
    d.name = "dev" + std::to_string(i);
    d.address = "192.168." + std::to_string(1 + i / 250) + "." + std::to_string(2 + i % 250);
    const int base = 1024 + i * 111;
    d.plan.sip = {static_cast<uint16_t>(base), static_cast<uint16_t>(base + 10)};
    d.plan.rtp = {static_cast<uint16_t>(base + 11), static_cast<uint16_t>(base + 110)};
    in.devices.push_back(d);
  }
  natpilot::rules::RouterParams params;
  params.wan_interface = "wan0";
  params.lan_interface = "br0";

  using Ms = std::chrono::duration<double, std::milli>;
  constexpr int kRounds = 20;
  std::string text;
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    auto out = natpilot::rules::Generate(natpilot::rules::Format::kNftables, in, params);
    if (!out) {
      std::fprintf(stderr, "%s\n", out.error().message.c_str());
      return 1;
    }
    text = std::move(*out);
  }
  const double grouped_ms = Ms(std::chrono::steady_clock::now() - t0).count() / kRounds;
  std::ofstream(dir + "/grouped.nft") << text;

  // The naive file: one DNAT and one accept per forwarded port.
  const auto t1 = std::chrono::steady_clock::now();
  std::string naive =
      "table ip natpilot\ndelete table ip natpilot\ntable ip natpilot {\n"
      "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n";
  std::string forward =
      "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n";
  size_t forwards = 0;
  for (const Device& d : in.devices) {
    auto add = [&](const char* proto, int port) {
      naive += "\t\tiifname \"wan0\" " + std::string(proto) + " dport " + std::to_string(port) +
               " dnat to " + d.address + ";\n";
      forward += "\t\tip daddr " + d.address + " " + proto + " dport " + std::to_string(port) +
                 " ct status dnat accept;\n";
      ++forwards;
    };
    for (int p = d.plan.sip.first; p <= d.plan.sip.last; ++p) add("udp", p), add("tcp", p);
    for (int p = d.plan.rtp.first; p <= d.plan.rtp.last; ++p) add("udp", p);
  }
  naive += "\t}\n" + forward + "\t}\n}\n";
  const double naive_ms = Ms(std::chrono::steady_clock::now() - t1).count();
  std::ofstream(dir + "/per-port.nft") << naive;

  std::printf("forwards                 %zu (500 devices)\n", forwards);
  std::printf("generate grouped         %.2f ms (mean of %d), %zu bytes\n", grouped_ms, kRounds,
              text.size());
  std::printf("generate per-port        %.2f ms, %zu bytes\n", naive_ms, naive.size());
  return 0;
}
