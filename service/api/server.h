// natpilotd's gRPC server: the unix socket (admin door) and the loopback TCP listener, with health
// checking and server reflection.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "api/services.h"

namespace natpilot {

struct ServerOptions {
  std::string unix_socket;   // path; empty = none
  unsigned unix_socket_mode = 0660;
  std::string listen;        // host:port; empty = none
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
  ServerOptions options_;
  DeviceServiceImpl devices_;
  MappingServiceImpl mappings_;
  GatewayServiceImpl gateway_;
  EventServiceImpl events_;
  RulesServiceImpl rules_;
  std::unique_ptr<grpc::Server> server_;
  int tcp_port_ = 0;
};

}  // namespace natpilot
