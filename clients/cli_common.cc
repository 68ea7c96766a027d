#include "cli_common.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace natpilot::cli {

namespace {
std::string g_token;  // sent with every call when set

// grpc::StatusCode's names, by value.
constexpr const char* kCodes[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
}  // namespace

std::string ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) throw CliError{std::string(flag) + " '" + path + "' cannot be read", 2};
  return ss.str();
}

void ChooseToken(const Options& o) {
  if (!o.token_file.empty()) {
    std::istringstream in(ReadFile(o.token_file, "--token-file"));
    std::getline(in, g_token);
  } else if (!o.token.empty()) {
    g_token = o.token;
  } else if (const char* env = std::getenv("NATPILOT_TOKEN")) {
    g_token = env;
  }
  if (o.server.empty()) g_token.clear();  // the unix socket needs none
}

Channel Connect(const Options& o) {
  if (o.server.empty()) {
    return grpc::CreateChannel("unix:" + o.socket, grpc::InsecureChannelCredentials());
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(o.tls_ca, "--tls-ca");
    if (!o.tls_cert.empty()) {
      ssl.pem_cert_chain = ReadFile(o.tls_cert, "--tls-cert");
      ssl.pem_private_key = ReadFile(o.tls_key, "--tls-key");
    }
    creds = grpc::SslCredentials(ssl);
    if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  }
  return grpc::CreateCustomChannel(o.server, creds, args);
}

void Check(const grpc::Status& status, const Options& o) {
  if (status.ok()) return;
  std::string msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      msg.find("connect") != std::string::npos) {
    const bool tls =
        msg.find("andshake") != std::string::npos || msg.find("SSL") != std::string::npos;
    msg = "cannot reach natpilotd at " + (o.server.empty() ? "unix:" + o.socket : o.server) +
          (tls ? " (TLS failed: check --tls-ca, --tls-cert and --tls-key against natpilotd's "
                 "api.tls_* files)"
               : " (is it running? --socket PATH or --server HOST:PORT)") +
          ": " + msg;
  }
  const int code = status.error_code();
  throw CliError{msg + " [" + (code >= 0 && code <= 16 ? kCodes[code] : "?") + "]"};
}

std::unique_ptr<grpc::ClientContext> Ctx(int timeout_s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout_s > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  }
  if (!g_token.empty()) ctx->AddMetadata("authorization", "Bearer " + g_token);
  return ctx;
}

void Commands::Add(const CLI::App* command, Handler run) {
  remote_.emplace_back(command, std::move(run));
}

void Commands::AddLocal(const CLI::App* command, std::function<void()> run) {
  local_.emplace_back(command, std::move(run));
}

bool Commands::RunLocal() const {
  for (const auto& [command, run] : local_) {
    if (*command) {
      run();
      return true;
    }
  }
  return false;
}

void Commands::Run(const Options& o, const Channel& channel) const {
  for (const auto& [command, run] : remote_) {
    if (*command) {
      run(o, channel);
      return;
    }
  }
}

}  // namespace natpilot::cli
