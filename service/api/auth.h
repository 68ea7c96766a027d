// The gRPC edge's side of authentication: what the transport and the metadata say, handed to the
// one Authenticator both edges share (app/caller.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "app/caller.h"

namespace natpilot {

// "ipv4:127.0.0.1:5555" -> "127.0.0.1"; "ipv6:[::1]:5555" -> "::1"; "unix:..." -> "".
std::string PeerIp(const std::string& peer);

Result<Caller> Authenticate(const Authenticator& auth, const grpc::ServerContextBase& ctx);

}  // namespace natpilot
