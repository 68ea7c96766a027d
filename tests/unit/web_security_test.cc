// The status page's server against hostile clients (issue 15, class 4): Host names a DNS-rebinding
// page would use are refused; open pages are bounded per address and in all; connections that
// never finish cannot make natpilotd hold descriptors without limit.
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "api_fixture.h"
#include "web/web_server.h"

namespace natpilot {
namespace {

TEST(WebHost, OnlyAddressesLocalhostAndConfiguredNames) {
  const std::vector<std::string> names = {"natpilot.lan"};
  for (const char* ok :
       {"127.0.0.1", "127.0.0.1:8080", "192.168.1.2:80", "localhost", "LocalHost:8080", "[::1]",
        "[::1]:8080", "natpilot.lan", "NATPILOT.LAN:8080"}) {
    EXPECT_TRUE(web::AllowedHost(ok, names)) << ok;
  }
  for (const char* bad : {"", "evil.example", "evil.example:8080", "natpilot.lan.evil.example",
                          "127.0.0.1.nip.io", "127.0.0.1:", "127.0.0.1:80x", "[::1", "[::1]x",
                          "[zz]:80", "localhost.evil", "natpilot.lan:99999999"}) {
    EXPECT_FALSE(web::AllowedHost(bad, names)) << bad;
  }
  EXPECT_FALSE(web::AllowedHost(std::string("127.0.0.1\0.evil", 15), names));
}

class WebSecurityTest : public ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    web_ = std::make_unique<web::WebServer>(web::WebContext{*store_,
                                                            *registry_,
                                                            *reconciler_,
                                                            bus_,
                                                            rules_,
                                                            *limiter_,
                                                            metrics_,
                                                            *auth_,
                                                            {"natpilot.lan"}},
                                            "127.0.0.1:0");
    web_->Start();
  }
  void TearDown() override {
    for (int fd : open_) ::close(fd);
    web_->Stop();
    ApiFixture::TearDown();
  }
  // A raw connection (nonblocking connect: past the server's backlog it would block).
  int Connect() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(web_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    open_.push_back(fd);
    return fd;
  }
  // Sends a request on a fresh connection; the status line's code once headers arrived (0: none
  // within 10 s). The connection stays open (a stream keeps its slot).
  int Request(const std::string& path, const std::string& host) {
    const int fd = Connect();
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0) return 0;
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return 0;
    std::string got;
    char buf[2048];
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < end) {
      p = {fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
  }
  static size_t OpenDescriptors() {
    size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (::readdir(d) != nullptr) ++n;
      ::closedir(d);
    }
    return n;
  }

  ApiMetrics metrics_;
  std::unique_ptr<web::WebServer> web_;
  std::vector<int> open_;
};

TEST_F(WebSecurityTest, ARebindingHostNameIsRefusedOnEveryRoute) {
  for (const char* path :
       {"/", "/api/status", "/api/events", "/api/stream", "/metrics", "/rules/natpilot.nft"}) {
    EXPECT_EQ(Request(path, "attacker.example:" + std::to_string(web_->port())), 421) << path;
  }
  EXPECT_EQ(Request("/api/status", "127.0.0.1:" + std::to_string(web_->port())), 200);
  EXPECT_EQ(Request("/api/status", "natpilot.lan:" + std::to_string(web_->port())), 200);
  EXPECT_EQ(Request("/api/status", "localhost"), 200);
}

TEST_F(WebSecurityTest, OpenPagesAreBoundedPerAddress) {
  for (size_t i = 0; i < web::kStreamsPerAddress; ++i) {
    EXPECT_EQ(Request("/api/stream", "127.0.0.1"), 200) << i;
  }
  EXPECT_EQ(Request("/api/stream", "127.0.0.1"), 429);
  EXPECT_EQ(Request("/api/status", "127.0.0.1"), 200);  // the rest of the page still answers
}

// Hundreds of connections that send nothing: natpilotd holds at most its workers' and its queue's
// descriptors (the rest wait in the kernel), and answers again once they are gone.
TEST_F(WebSecurityTest, IdleConnectionsCannotExhaustDescriptors) {
  const size_t before = OpenDescriptors();
  constexpr size_t kIdle = 300;
  for (size_t i = 0; i < kIdle; ++i) Connect();
  // Let the server accept what it will (a condition: the count stops growing for a while).
  size_t last = 0, now = OpenDescriptors();
  for (int stable = 0; stable < 5;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    last = now;
    now = OpenDescriptors();
    stable = now == last ? stable + 1 : 0;
  }
  const size_t server_side =
      now - before - kIdle;  // our own client sockets are in this process too
  EXPECT_LE(server_side, web::kWorkers + web::kQueuedConnections + 2)
      << "descriptors held by the server";
  for (int fd : open_) ::close(fd);
  open_.clear();
  // Served again once they are gone (each waited at most the read timeout).
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = Request("/api/status", "127.0.0.1");
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 200);
}

// Both edges share one Authenticator: the status page takes exactly the tokens the API takes, and
// only the admin's may change anything (a device token reaches one device; the page acts on all).
TEST_F(WebSecurityTest, ChangesFromThePageAreAuthenticatedAsOverTheApi) {
  httplib::Client http("127.0.0.1", web_->port());
  const std::string body =
      R"({"name": "webdev", "address": "192.168.1.44", "sip": "5200", "rtp": "30000-30009"})";
  auto post = [&](const std::string& authorization) {
    httplib::Headers h{{"Host", "127.0.0.1"}};
    if (!authorization.empty()) h.emplace("Authorization", authorization);
    return http.Post("/api/devices", h, body, "application/json");
  };
  auto none = post("");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->body.find("Authorization: Bearer TOKEN"), std::string::npos) << none->body;
  auto wrong = post("Bearer npa_not-a-token-at-all-000000");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto device = post("Bearer " + ata_token_);
  ASSERT_TRUE(device);
  EXPECT_EQ(device->status, 403) << device->body;
  EXPECT_FALSE(store_->GetDevice("webdev"));
  auto admin = post(std::string("Bearer ") + kAdminToken);
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 201) << admin->body;
  ASSERT_TRUE(store_->GetDevice("webdev"));
  EXPECT_EQ(store_->ListEvents(0, 1000).back().caller, "admin token via web from 127.0.0.1");
}

}  // namespace
}  // namespace natpilot
