#include "portmap/upnp_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace natpilot::upnp {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string HeaderValue(std::string_view headers, std::string_view wanted) {
  const std::string name = Lower(wanted);
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t end = headers.find("\r\n", pos);
    if (end == std::string_view::npos) end = headers.size();
    const std::string_view line = headers.substr(pos, end - pos);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && Lower(line.substr(0, colon)) == name) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return std::string(v);
    }
    pos = end + 2;
  }
  return "";
}

namespace {

Result<std::string> Dechunk(std::string_view body) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos)
      return Fail(Errc::kInvalidArgument, "truncated chunked body");
    const std::string size_line(body.substr(pos, std::min<size_t>(eol - pos, 16)));
    char* end = nullptr;
    const unsigned long n = std::strtoul(size_line.c_str(), &end, 16);
    if (end == size_line.c_str()) return Fail(Errc::kInvalidArgument, "bad chunk size");
    if (n == 0) return out;
    pos = eol + 2;
    if (n > body.size() - pos) return Fail(Errc::kInvalidArgument, "truncated chunk");
    out.append(body.substr(pos, n));
    pos += n + 2;  // the chunk's CRLF
    if (pos > body.size()) return Fail(Errc::kInvalidArgument, "truncated chunk");
  }
}

int Remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<HttpAnswer> ParseHttpAnswer(std::string_view raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos)
    return Fail(Errc::kInvalidArgument, "no end of HTTP headers");
  const std::string_view head = raw.substr(0, head_end);
  const size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12 || status_line[8] != ' ') {
    return Fail(Errc::kInvalidArgument, "not an HTTP answer");
  }
  const std::string code(status_line.substr(9, 3));
  if (code.find_first_not_of("0123456789") != std::string::npos) {
    return Fail(Errc::kInvalidArgument, "bad HTTP status");
  }
  HttpAnswer out;
  out.status = std::stoi(code);
  const std::string_view headers = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  out.head = std::string(headers);
  std::string_view body = raw.substr(head_end + 4);
  if (Lower(HeaderValue(headers, "transfer-encoding")).find("chunked") != std::string::npos) {
    auto b = Dechunk(body);
    if (!b) return tl::unexpected(b.error());
    out.body = std::move(*b);
    return out;
  }
  if (const std::string len = HeaderValue(headers, "content-length"); !len.empty()) {
    if (len.size() > 9 || len.find_first_not_of("0123456789") != std::string::npos) {
      return Fail(Errc::kInvalidArgument, "bad Content-Length");
    }
    const size_t n = std::stoul(len);
    if (n > body.size())
      return Fail(Errc::kInvalidArgument, "HTTP body shorter than its Content-Length");
    body = body.substr(0, n);
  }
  out.body = std::string(body);
  return out;
}

Result<HttpAnswer> HttpRequest(std::string_view method, const HttpUrl& url,
                               std::string_view headers, std::chrono::milliseconds timeout,
                               size_t max_bytes) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(url.port);
  if (inet_pton(AF_INET, url.host.c_str(), &to.sin_addr) != 1) {
    return Fail(Errc::kInvalidArgument, "not an IPv4 address: " + Sanitize(url.host, 64));
  }
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return Fail(Errc::kUnavailable, std::string("socket: ") + std::strerror(errno));
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    return Fail(Errc::kUnavailable, std::string("connect: ") + std::strerror(errno));
  }
  pollfd p{s.fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (::poll(&p, 1, Remaining(deadline)) <= 0) return Fail(Errc::kUnavailable, "connect timed out");
  if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    return Fail(Errc::kUnavailable, std::string("connect: ") + std::strerror(err));
  }
  // GENA requests are HTTP/1.1 (UDA 1.1 section 4); a GET stays 1.0, as miniupnpc sends it.
  const std::string version = method == "GET" ? "HTTP/1.0" : "HTTP/1.1";
  const std::string request = std::string(method) + " " + url.path + " " + version +
                              "\r\nHost: " + url.host + ":" + std::to_string(url.port) +
                              "\r\nConnection: close\r\n" + std::string(headers) + "\r\n";
  for (size_t sent = 0; sent < request.size();) {
    p = {s.fd, POLLOUT, 0};
    if (::poll(&p, 1, Remaining(deadline)) <= 0) return Fail(Errc::kUnavailable, "send timed out");
    const ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return Fail(Errc::kUnavailable, "send failed");
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[4096];
  for (;;) {
    p = {s.fd, POLLIN, 0};
    if (::poll(&p, 1, Remaining(deadline)) <= 0)
      return Fail(Errc::kUnavailable, "answer timed out");
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Fail(Errc::kUnavailable, std::string("recv: ") + std::strerror(errno));
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > max_bytes + 16384) return Fail(Errc::kInvalidArgument, "answer too large");
    // Complete by its Content-Length: a server that keeps the connection open despite
    // "Connection: close" is not waited for until the deadline.
    if (const size_t head_end = raw.find("\r\n\r\n"); head_end != std::string::npos) {
      const std::string want =
          HeaderValue(std::string_view(raw).substr(0, head_end), "content-length");
      if (!want.empty() && want.size() <= 9 &&
          want.find_first_not_of("0123456789") == std::string::npos &&
          raw.size() >= head_end + 4 + std::stoul(want)) {
        break;
      }
    }
  }
  auto answer = ParseHttpAnswer(raw);
  if (!answer) return answer;
  sockaddr_in local{};
  len = sizeof local;
  char text[INET_ADDRSTRLEN] = {0};
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    inet_ntop(AF_INET, &local.sin_addr, text, sizeof text);
  }
  answer->local_address = text;
  return answer;
}

}  // namespace natpilot::upnp
