#include "api/server.h"

#include <grp.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace natpilot {
namespace {

std::string ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in || ss.str().find("-----BEGIN") == std::string::npos) {
    throw std::runtime_error(std::string(what) + " '" + path + "' cannot be read or is not PEM");
  }
  return ss.str();
}

std::shared_ptr<grpc::ServerCredentials> TcpCredentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back(
      {ReadPem(o.tls_key_file, "api.tls_key_file"), ReadPem(o.tls_cert_file, "api.tls_cert_file")});
  if (!o.tls_client_ca_file.empty()) {
    ssl.pem_root_certs = ReadPem(o.tls_client_ca_file, "api.tls_client_ca_file");
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

ApiServer::ApiServer(ApiContext ctx, ServerOptions options)
    : options_(std::move(options)),
      doctor_(ctx.stun_server),
      devices_(Owned(ctx)),
      mappings_(Owned(ctx)),
      gateway_(Owned(ctx)),
      events_(Owned(ctx)),
      nat_(Owned(ctx)),
      rules_(Owned(ctx)) {}

ApiServer::~ApiServer() { Shutdown(); }

void ApiServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::string socket_path;
  if (!options_.unix_socket.empty()) {
    socket_path = std::filesystem::absolute(options_.unix_socket).string();
    std::error_code ec;
    if (std::filesystem::is_socket(socket_path, ec)) std::filesystem::remove(socket_path, ec);
    builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  }
  if (!options_.listen.empty()) {
    builder.AddListeningPort(options_.listen, TcpCredentials(options_), &tcp_port_);
  }
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  if (options_.metrics != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(options_.metrics->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.RegisterService(&devices_);
  builder.RegisterService(&mappings_);
  builder.RegisterService(&gateway_);
  builder.RegisterService(&events_);
  builder.RegisterService(&nat_);
  builder.RegisterService(&rules_);
  // The socket is created by gRPC; a umask keeps it from ever being wider than the mode asked.
  const mode_t old_mask = ::umask(0777 & ~options_.unix_socket_mode);
  server_ = builder.BuildAndStart();
  ::umask(old_mask);
  if (!server_) {
    throw std::runtime_error("cannot start the API: could not listen on " +
                             (socket_path.empty() ? "" : "unix:" + socket_path) +
                             (options_.listen.empty() ? "" : " and " + options_.listen) +
                             " (in use, or no permission)");
  }
  if (!options_.listen.empty() && tcp_port_ == 0) {
    throw std::runtime_error("cannot listen on " + options_.listen);
  }
  if (!socket_path.empty()) {
    ::chmod(socket_path.c_str(), options_.unix_socket_mode);
    if (!options_.unix_socket_group.empty()) {
      const struct group* g = ::getgrnam(options_.unix_socket_group.c_str());
      if (g == nullptr || ::chown(socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
        Shutdown();
        throw std::runtime_error("api.unix_socket_group '" + options_.unix_socket_group +
                                 "': no such group, or the socket cannot be given to it");
      }
    }
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
}

void ApiServer::Shutdown() {
  doctor_.Stop();  // a Diagnose waiting for it ends now (UNAVAILABLE), not after its checks
  if (!server_) return;
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
  views_.Stop();  // every stream is done: no job is left
  if (!options_.unix_socket.empty()) {
    std::error_code ec;
    std::filesystem::remove(options_.unix_socket, ec);
  }
}

}  // namespace natpilot
