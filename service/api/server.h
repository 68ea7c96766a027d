// natpilotd's gRPC server: the unix socket (admin door) and the loopback TCP listener, with health
// checking and server reflection.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "api/api_metrics.h"
#include "api/services.h"

namespace natpilot {

struct ServerOptions {
  std::string unix_socket;  // path; empty = none
  unsigned unix_socket_mode = 0660;
  std::string unix_socket_group;  // group that owns the socket; empty = the daemon's
  std::string listen;             // host:port; empty = none
  // TLS on the TCP listener: certificate chain and key (PEM); with a client CA, clients must
  // present a certificate it signed.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  int max_message_bytes = 64 * 1024;  // largest request accepted
  ApiMetrics* metrics = nullptr;      // counts calls by method and status when set
};

class ApiServer {
 public:
  ApiServer(ApiContext ctx, ServerOptions options);
  ~ApiServer();
  // Throws std::runtime_error when a listener cannot be opened.
  void Start();
  void Shutdown();
  int tcp_port() const { return tcp_port_; }

 private:
  ApiContext Owned(ApiContext ctx) {
    ctx.streams = &streams_;
    ctx.doctor = &doctor_;
    ctx.views = &views_;
    ctx.read_limit = &read_limit_;
    ctx.auth_failures = &auth_failures_;
    return ctx;
  }
  ServerOptions options_;
  // Before the services: they point at these.
  StreamLimits streams_;
  DoctorRunner doctor_;
  Refresher views_;
  RateLimiter read_limit_{200, 400, RateLimiter::Clock::now, "reads"};
  RateLimiter auth_failures_{1, 10, RateLimiter::Clock::now, "failed authentications"};
  DeviceServiceImpl devices_;
  MappingServiceImpl mappings_;
  GatewayServiceImpl gateway_;
  EventServiceImpl events_;
  NatServiceImpl nat_;
  RulesServiceImpl rules_;
  std::unique_ptr<grpc::Server> server_;
  int tcp_port_ = 0;
};

}  // namespace natpilot
