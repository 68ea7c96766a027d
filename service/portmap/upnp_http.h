// Bounded HTTP for UPnP: GET of root descriptions, SUBSCRIBE/UNSUBSCRIBE of GENA events. Any LAN
// host can answer SSDP and name a URL; miniwget waits up to 5 s per read with no overall limit, so
// a host that sends a byte every few seconds would hold the probe forever. Here one deadline covers
// connect, request and the whole answer, and the answer is capped in bytes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/error.h"
#include "portmap/upnp_description.h"

namespace natpilot::upnp {

struct HttpAnswer {
  int status = 0;
  std::string body;
  std::string local_address;  // ours, on the connection (set by HttpRequest)
  std::string head;           // the header lines after the status line (see HeaderValue)
};

// The value of header `name` (case-insensitive; the first one, trimmed) in `head`, or "".
std::string HeaderValue(std::string_view head, std::string_view name);

// Splits a complete HTTP/1.x answer (pure): status line, headers, body; a chunked body is decoded,
// Content-Length is honoured. Errors for anything malformed.
Result<HttpAnswer> ParseHttpAnswer(std::string_view raw);

// `method` of `url` (whose host must be an IPv4 literal) with "Connection: close" (GET as HTTP/1.0,
// others as HTTP/1.1);
// `headers` are extra lines, each ending in CRLF. The answer is read until the peer closes.
Result<HttpAnswer> HttpRequest(std::string_view method, const HttpUrl& url,
                               std::string_view headers, std::chrono::milliseconds timeout,
                               size_t max_bytes);
inline Result<HttpAnswer> HttpGet(const HttpUrl& url, std::chrono::milliseconds timeout,
                                  size_t max_bytes) {
  return HttpRequest("GET", url, "", timeout, max_bytes);
}

}  // namespace natpilot::upnp
