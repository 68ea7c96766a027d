// A bounded HTTP GET for UPnP root descriptions. Any LAN host can answer SSDP and name a URL;
// miniwget waits up to 5 s per read with no overall limit, so a host that sends a byte every few
// seconds would hold the probe forever. Here one deadline covers connect, request and the whole
// answer, and the answer is capped in bytes.
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
  std::string local_address;  // ours, on the connection (set by HttpGet)
};

// Splits a complete HTTP/1.x answer (pure): status line, headers, body; a chunked body is decoded,
// Content-Length is honoured. Errors for anything malformed.
Result<HttpAnswer> ParseHttpAnswer(std::string_view raw);

// GET of `url`, whose host must be an IPv4 literal, as HTTP/1.0 with "Connection: close".
Result<HttpAnswer> HttpGet(const HttpUrl& url, std::chrono::milliseconds timeout, size_t max_bytes);

}  // namespace natpilot::upnp
