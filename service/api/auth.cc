#include "api/auth.h"

namespace natpilot {

std::string PeerIp(const std::string& peer) {
  if (peer.rfind("unix:", 0) == 0) return "";
  std::string rest = peer.substr(peer.find(':') + 1);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.rfind(':'));
}

Result<Caller> Authenticate(const Authenticator& auth, const grpc::ServerContextBase& ctx) {
  const std::string peer = ctx.peer();
  Credentials cred;
  cred.unix_socket = peer.rfind("unix:", 0) == 0;
  cred.peer_ip = PeerIp(peer);
  cred.carrier = "\"authorization: Bearer TOKEN\" metadata";
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    cred.authorization = std::string_view(it->second.data(), it->second.size());
  }
  return auth.Authenticate(cred);
}

}  // namespace natpilot
