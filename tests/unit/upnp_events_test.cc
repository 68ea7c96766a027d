// GENA events (upnp_events.h): the NOTIFY reader on exact bytes, and the subscriber against a
// scripted event source on loopback (real sockets). The scripted source is for what the lab's
// miniupnpd does not do on demand: forget a subscription (412), spoofed and malformed NOTIFYs.
// The lab test (test_address_change.sh gena) runs the subscriber against miniupnpd itself.
#include "portmap/upnp_events.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "portmap/upnp_http.h"

namespace natpilot {
namespace {

using namespace std::chrono_literals;

std::string NotifyRequest(const std::string& sid, const std::string& body, uint32_t seq = 0,
                          const std::string& extra = "") {
  return "NOTIFY /natpilot/gena HTTP/1.1\r\nHOST: 127.0.0.1:1\r\nCONTENT-TYPE: text/xml; "
         "charset=\"utf-8\"\r\n"
         "NT: upnp:event\r\nNTS: upnp:propchange\r\nSID: " +
         sid + "\r\nSEQ: " + std::to_string(seq) + "\r\n" + extra +
         "CONTENT-LENGTH: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string PropertySet(const std::string& inner) {
  return "<?xml version=\"1.0\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">" +
         inner + "</e:propertyset>";
}

TEST(UpnpNotify, ReadsTheExternalAddressOfAMiniupnpdNotify) {
  const std::string raw = NotifyRequest(
      "uuid:1-2",
      PropertySet(
          "<e:property><PortMappingNumberOfEntries>4</PortMappingNumberOfEntries></e:property>"
          "<e:property><ExternalIPAddress>203.0.113.9</ExternalIPAddress></e:property>"),
      7);
  ASSERT_EQ(upnp::RequestLength(raw), raw.size());
  auto n = upnp::ParseNotify(raw);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->sid, "uuid:1-2");
  EXPECT_EQ(n->seq, 7u);
  EXPECT_EQ(n->external_address, "203.0.113.9");
  // A prefixed element, whitespace around the value, an empty one.
  n = upnp::ParseNotify(NotifyRequest(
      "uuid:x", PropertySet("<m:ExternalIPAddress>\n 198.51.100.4 </m:ExternalIPAddress>")));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->external_address, "198.51.100.4");
  n = upnp::ParseNotify(NotifyRequest("uuid:x", PropertySet("<ExternalIPAddress/>")));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->external_address, "");
  // Other properties only: no address.
  n = upnp::ParseNotify(NotifyRequest(
      "uuid:x",
      PropertySet("<e:property><ConnectionStatus>Connected</ConnectionStatus></e:property>")));
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->external_address);
}

TEST(UpnpNotify, ForeignTextInTheAddressIsNotAnAddress) {
  for (const std::string& value :
       {std::string("203.0.113.9\n[transport]"), std::string("203.0.113.9\0x", 13),
        std::string("\x1b[31m203.0.113.9"), std::string(60, '1')}) {
    auto n = upnp::ParseNotify(NotifyRequest(
        "uuid:x", PropertySet("<ExternalIPAddress>" + value + "</ExternalIPAddress>")));
    ASSERT_TRUE(n);
    EXPECT_FALSE(n->external_address) << value;
  }
}

TEST(UpnpNotify, RefusesWhatIsNotAGenaEvent) {
  const std::string body = PropertySet("<ExternalIPAddress>203.0.113.9</ExternalIPAddress>");
  std::string ok = NotifyRequest("uuid:x", body);
  EXPECT_TRUE(upnp::ParseNotify(ok));
  EXPECT_FALSE(upnp::ParseNotify("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(upnp::ParseNotify(ok.substr(0, ok.size() - 5)));  // shorter than its Content-Length
  std::string no_nt = ok;
  no_nt.replace(no_nt.find("NT: upnp:event"), 14, "NT: upnp:other");
  EXPECT_FALSE(upnp::ParseNotify(no_nt));
  EXPECT_FALSE(upnp::ParseNotify(NotifyRequest("", body)));          // no SID
  EXPECT_FALSE(upnp::ParseNotify(NotifyRequest("uuid:a b", body)));  // a space in it
  EXPECT_FALSE(
      upnp::ParseNotify(NotifyRequest("uuid:x", body, 0, "TRANSFER-ENCODING: chunked\r\n")));
  std::string bad_seq = ok;
  bad_seq.replace(bad_seq.find("SEQ: 0"), 6, "SEQ: -1");
  EXPECT_FALSE(upnp::ParseNotify(bad_seq));
  // A Content-Length beyond the bound is refused, not waited for.
  std::string huge = ok;
  huge.replace(huge.find("CONTENT-LENGTH: "), 16 + std::to_string(body.size()).size(),
               "CONTENT-LENGTH: 99999999");
  EXPECT_FALSE(upnp::ParseNotify(huge));
  EXPECT_LE(*upnp::RequestLength(huge), huge.size() + upnp::kMaxNotifyBytes);
  EXPECT_FALSE(upnp::RequestLength("NOTIFY / HTTP/1.1\r\nSID: x\r\n"));
}

TEST(UpnpNotify, Timeouts) {
  EXPECT_EQ(upnp::ParseTimeout("Second-1800"), 1800u);
  EXPECT_EQ(upnp::ParseTimeout(" second-30 "), 30u);
  EXPECT_EQ(upnp::ParseTimeout("infinite"), 0u);
  EXPECT_FALSE(upnp::ParseTimeout("Second-"));
  EXPECT_FALSE(upnp::ParseTimeout("Second--5"));
  EXPECT_FALSE(upnp::ParseTimeout("Minute-5"));
  EXPECT_FALSE(upnp::ParseTimeout(""));
}

// A scripted GENA event source on 127.0.0.2: answers SUBSCRIBE (new and renewal) and UNSUBSCRIBE,
// and sends NOTIFYs to the CALLBACK it was given, from the address the test picks.
class EventSource {
 public:
  std::atomic<int> forget{0};  // this many renewals answer 412 (the IGD restarted)
  uint32_t granted_s = 1800;

  EventSource() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~EventSource() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string Url() const { return "http://127.0.0.2:" + std::to_string(port_) + "/evt/IPConn"; }

  // Waits until `count` requests of `method` arrived; the count-th one.
  std::string WaitFor(const std::string& method, size_t count, std::chrono::seconds within = 10s) {
    std::unique_lock lock(mu_);
    std::string last;
    cv_.wait_for(lock, within, [&] {
      size_t n = 0;
      for (const auto& r : requests_) {
        if (r.rfind(method + " ", 0) == 0 && ++n == count) last = r;
      }
      return n >= count;
    });
    return last;
  }
  size_t Count(const std::string& method) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& r : requests_) n += r.rfind(method + " ", 0) == 0;
    return n;
  }
  std::string Sid() {
    std::lock_guard lock(mu_);
    return "uuid:scripted-" + std::to_string(sids_);
  }

  // Sends `request` from `from` to the CALLBACK of the last SUBSCRIBE; the HTTP status answered
  // (0: closed without an answer).
  int Notify(const std::string& from, const std::string& request) {
    const std::string subscribe = WaitFor("SUBSCRIBE", 1);
    const std::string callback = upnp::HeaderValue(subscribe, "callback");
    auto url = upnp::ParseHttpUrl(callback.substr(1, callback.size() - 2));
    if (!url) return -1;
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, from.c_str(), &a.sin_addr);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    a.sin_port = htons(url->port);
    inet_pton(AF_INET, url->host.c_str(), &a.sin_addr);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(s);
      return -1;
    }
    (void)::send(s, request.data(), request.size(), MSG_NOSIGNAL);
    std::string answer;
    char buf[512];
    pollfd p{s, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::recv(s, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
    ::close(s);
    return answer.size() > 12 && answer.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(answer.substr(9, 3))
                                                                   : 0;
  }

 private:
  void Serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string raw;
      char buf[1024];
      while (raw.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<size_t>(n));
      }
      std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      if (raw.rfind("SUBSCRIBE ", 0) == 0) {
        const bool renewal = !upnp::HeaderValue(raw, "sid").empty();
        std::lock_guard lock(mu_);
        if (renewal && forget > 0) {
          --forget;
          answer = "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n";
        } else {
          if (!renewal) ++sids_;
          answer = "HTTP/1.1 200 OK\r\nSID: uuid:scripted-" + std::to_string(sids_) +
                   "\r\nTIMEOUT: Second-" + std::to_string(granted_s) +
                   "\r\nContent-Length: 0\r\n\r\n";
        }
      }
      (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
      {
        std::lock_guard lock(mu_);
        requests_.push_back(raw);
      }
      cv_.notify_all();
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> requests_;
  int sids_ = 0;
};

struct Heard {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> told;  // sender, address
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return told.size() >= n; });
  }
  size_t Size() {
    std::lock_guard lock(mu);
    return told.size();
  }
};

// The status once it says `text` (polled for up to 5 s: the thread sets it after its request).
std::string WaitStatus(const UpnpEvents& events, const std::string& text) {
  std::string status = events.Status();
  for (int i = 0; i < 100 && status.find(text) == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    status = events.Status();
  }
  return status;
}

TEST(UpnpEvents, SubscribesHearsTheGatewayAndNobodyElse) {
  EventSource source;
  Heard heard;
  UpnpEvents events;
  ASSERT_TRUE(events.Start([&heard](const std::string& sender, const std::string& address) {
    std::lock_guard lock(heard.mu);
    heard.told.emplace_back(sender, address);
    heard.cv.notify_all();
  }));
  events.Follow(source.Url());
  const std::string subscribe = source.WaitFor("SUBSCRIBE", 1);
  ASSERT_FALSE(subscribe.empty()) << "no SUBSCRIBE";
  EXPECT_NE(subscribe.find("SUBSCRIBE /evt/IPConn HTTP/1.1\r\n"), std::string::npos) << subscribe;
  EXPECT_EQ(upnp::HeaderValue(subscribe, "nt"), "upnp:event");
  EXPECT_EQ(upnp::HeaderValue(subscribe, "timeout"), "Second-1800");
  const std::string callback = upnp::HeaderValue(subscribe, "callback");
  EXPECT_EQ(callback.rfind("<http://127.", 0), 0u) << callback;
  const std::string body =
      PropertySet("<e:property><ExternalIPAddress>203.0.113.9</ExternalIPAddress></e:property>");
  // The status is set once the SUBSCRIBE's answer was read; a NOTIFY waits in the backlog until
  // then.
  EXPECT_EQ(source.Notify("127.0.0.2", NotifyRequest(source.Sid(), body)), 200);
  ASSERT_TRUE(heard.WaitFor(1));
  EXPECT_EQ(heard.told[0], (std::pair<std::string, std::string>{"127.0.0.2", "203.0.113.9"}));
  EXPECT_NE(events.Status().find("subscribed to " + source.Url()), std::string::npos)
      << events.Status();

  // Another SID (an old subscription, a guess): 412 and nothing heard.
  EXPECT_EQ(source.Notify("127.0.0.2", NotifyRequest("uuid:guess", body, 1)), 412);
  // Malformed: 400.
  EXPECT_EQ(source.Notify("127.0.0.2", "NOTIFY / HTTP/1.1\r\nSID: " + source.Sid() + "\r\n\r\n"),
            400);
  // Another host on the LAN, with the right SID even: closed unread.
  EXPECT_EQ(source.Notify("127.0.0.3", NotifyRequest(source.Sid(), body, 2)), 0);
  EXPECT_EQ(events.NotifiesRejected(), 3u);
  // Still listening to the gateway after all that.
  EXPECT_EQ(
      source.Notify(
          "127.0.0.2",
          NotifyRequest(source.Sid(),
                        PropertySet("<ExternalIPAddress>203.0.113.10</ExternalIPAddress>"), 3)),
      200);
  ASSERT_TRUE(heard.WaitFor(2));
  EXPECT_EQ(heard.Size(), 2u);
  EXPECT_EQ(heard.told[1].second, "203.0.113.10");

  events.Stop();  // unsubscribes
  EXPECT_EQ(upnp::HeaderValue(source.WaitFor("UNSUBSCRIBE", 1), "sid"), source.Sid());
}

// Renewals as often as the source's grant asks, down to 1 s.
UpnpEvents::Options FastRenewals() {
  UpnpEvents::Options options;
  options.min_renew = 1s;
  return options;
}

// Started, following `source`, and subscribed once.
void Subscribe(UpnpEvents& events, EventSource& source) {
  ASSERT_TRUE(events.Start([](const std::string&, const std::string&) {}));
  events.Follow(source.Url());
  ASSERT_FALSE(source.WaitFor("SUBSCRIBE", 1).empty());
}

TEST(UpnpEvents, RenewsAndSubscribesAgainWhenTheGatewayForgot) {
  EventSource source;
  source.granted_s = 2;  // renewed every second (min_renew 1 s)
  UpnpEvents events(FastRenewals());
  ASSERT_NO_FATAL_FAILURE(Subscribe(events, source));
  // A renewal carries the SID and no CALLBACK.
  const std::string renewal = source.WaitFor("SUBSCRIBE", 2);
  EXPECT_EQ(upnp::HeaderValue(renewal, "sid"), "uuid:scripted-1");
  EXPECT_EQ(upnp::HeaderValue(renewal, "callback"), "");
  // The gateway restarts: 412, and a new subscription with a CALLBACK follows at once.
  source.forget = 1;
  std::string again;
  for (size_t n = source.Count("SUBSCRIBE") + 1; n < 20; ++n) {
    again = source.WaitFor("SUBSCRIBE", n);
    if (!upnp::HeaderValue(again, "callback").empty()) break;
  }
  EXPECT_FALSE(upnp::HeaderValue(again, "callback").empty()) << again;
  EXPECT_EQ(source.Sid(), "uuid:scripted-2");
  // Another IGD: the old subscription is cancelled.
  events.Follow("");
  EXPECT_FALSE(source.WaitFor("UNSUBSCRIBE", 1).empty());
  const std::string status = WaitStatus(events, "not subscribed");
  EXPECT_NE(status.find("not subscribed"), std::string::npos) << status;
}

// A probe that finds the same IGD again (after an outage or a restart that sent no event) renews at
// once: an IGD that restarted answers 412 and gets a new subscription, instead of none for up to
// half the granted time.
TEST(UpnpEvents, TheSameIgdFoundAgainIsRenewedAtOnce) {
  EventSource source;  // grants 1800 s: no renewal of its own for 900 s
  UpnpEvents events(FastRenewals());
  ASSERT_NO_FATAL_FAILURE(Subscribe(events, source));
  events.Follow(source.Url());          // found again at once: not renewed within min_renew
  std::this_thread::sleep_for(1100ms);  // min_renew passes (a lower bound, not a race)
  source.forget = 1;
  events.Follow(source.Url());
  const std::string renewal = source.WaitFor("SUBSCRIBE", 2);
  EXPECT_EQ(upnp::HeaderValue(renewal, "sid"), "uuid:scripted-1");
  const std::string again = source.WaitFor("SUBSCRIBE", 3);
  EXPECT_FALSE(upnp::HeaderValue(again, "callback").empty()) << again;
  EXPECT_EQ(source.Count("SUBSCRIBE"), 3u);
}

TEST(UpnpEvents, AnIgdThatRefusesIsTriedAgainLaterNotHammered) {
  // Nothing listens at this URL's port on 127.0.0.2 (the port of a closed socket).
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  UpnpEvents events;
  ASSERT_TRUE(events.Start([](const std::string&, const std::string&) {}));
  events.Follow("http://127.0.0.2:" + std::to_string(ntohs(a.sin_port)) + "/evt");
  const std::string status = WaitStatus(events, "next try in 15 s");
  EXPECT_NE(status.find("not subscribed to http://127.0.0.2:"), std::string::npos) << status;
  EXPECT_NE(status.find("next try in 15 s"), std::string::npos) << status;
}

}  // namespace
}  // namespace natpilot
