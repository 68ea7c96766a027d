// The bounded HTTP GET for UPnP descriptions: parsing answers (pure), and a LAN host that answers
// one byte at a time forever cannot hold the caller past the deadline.
#include "portmap/upnp_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace natpilot::upnp {
namespace {

TEST(UpnpHttp, ParsesAnswers) {
  auto a = ParseHttpAnswer(
      "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello, and more");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "hello");
  a = ParseHttpAnswer(
      "HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked "
      "\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->body, "abcde");
  a = ParseHttpAnswer("HTTP/1.0 404 Not Found\r\n\r\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 404);
  a = ParseHttpAnswer("HTTP/1.0 200 OK\r\n\r\nuntil close");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "until close");
}

TEST(UpnpHttp, RefusesMalformedAnswers) {
  EXPECT_FALSE(ParseHttpAnswer(""));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(ParseHttpAnswer("SSH-2.0-OpenSSH\r\n\r\n"));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 2x0 OK\r\n\r\n"));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort"));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n"));
  EXPECT_FALSE(
      ParseHttpAnswer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nab"));
  EXPECT_FALSE(ParseHttpAnswer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
}

// Accepts one connection and sends `every` one byte of an endless answer.
class DribblingServer {
 public:
  DribblingServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 4);
    thread_ = std::thread([this] {
      pollfd p{fd_, POLLIN, 0};
      while (!stop_ && poll(&p, 1, 20) <= 0) {
      }
      if (stop_) return;
      const int c = accept(fd_, nullptr, nullptr);
      const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<root>";
      send(c, head.data(), head.size(), MSG_NOSIGNAL);
      while (!stop_) {
        send(c, "<", 1, MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      close(c);
    });
  }
  ~DribblingServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(UpnpHttp, AHostThatDribblesForeverCannotHoldTheCaller) {
  DribblingServer server;
  const auto start = std::chrono::steady_clock::now();
  auto got = HttpGet(HttpUrl{"127.0.0.1", server.port(), "/rootDesc.xml"},
                     std::chrono::milliseconds(500), kMaxDescriptionBytes);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(got);
  EXPECT_LT(took, 20.0) << "a hang guard only: the deadline is 0.5 s";
}

TEST(UpnpHttp, ANameIsNotFetchedHere) {
  EXPECT_FALSE(HttpGet(HttpUrl{"router.lan", 80, "/"}, std::chrono::milliseconds(100), 1000));
}

}  // namespace
}  // namespace natpilot::upnp
