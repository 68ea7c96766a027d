// What the natpilot CLI's command groups share: the global options, the connection to natpilotd,
// errors, and the table of subcommands that main dispatches to. Each group is in a cmd_*.cc.
#pragma once

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace natpilot::cli {

// Ends the command: main prints "natpilot: MESSAGE" and exits with exit_code (2: bad usage).
struct CliError {
  std::string message;
  int exit_code = 1;
};

// The options before the subcommand.
struct Options {
  std::string socket = "natpilot.sock";
  std::string server;
  bool json = false;
  std::string token;  // bearer token for TCP
  std::string token_file;
  std::string tls_ca;    // PEM: the CA that signed natpilotd's certificate; set = TLS
  std::string tls_cert;  // PEM: our client certificate and key, when natpilotd asks for one
  std::string tls_key;
  std::string tls_server_name;
};

using Channel = std::shared_ptr<grpc::Channel>;

// A file's whole text; `flag` names the option it came from in the error.
std::string ReadFile(const std::string& path, const char* flag);
// The token Ctx sends: --token-file, else --token, else NATPILOT_TOKEN; none on the unix socket.
void ChooseToken(const Options& o);
Channel Connect(const Options& o);
// Throws a CliError for a failed call, with a hint when natpilotd cannot be reached.
void Check(const grpc::Status& status, const Options& o);
// A call's context with the token; timeout_s 0 = no deadline (streams).
std::unique_ptr<grpc::ClientContext> Ctx(int timeout_s = 30);

// What a subcommand does once the command line is parsed and natpilotd is connected.
using Handler = std::function<void(const Options& o, const Channel& channel)>;

// The leaf subcommands and their handlers. Handlers run after parsing, not as CLI11 callbacks,
// so the token and the connection come first and a CliError reaches main's catch.
class Commands {
 public:
  void Add(const CLI::App* command, Handler run);
  // For a command that needs no natpilotd (version): no token, no connection.
  void AddLocal(const CLI::App* command, std::function<void()> run);
  // Runs the local command given, if any.
  bool RunLocal() const;
  // Runs the handler of the command given.
  void Run(const Options& o, const Channel& channel) const;

 private:
  std::vector<std::pair<const CLI::App*, Handler>> remote_;
  std::vector<std::pair<const CLI::App*, std::function<void()>>> local_;
};

// The command groups. main adds them in this order, which is the order of `natpilot --help`.
void AddDeviceCommands(CLI::App& app, Commands& commands);   // device
void AddMappingCommands(CLI::App& app, Commands& commands);  // mapping, release
void AddGatewayCommands(CLI::App& app, Commands& commands);  // gateway
void AddRulesCommands(CLI::App& app, Commands& commands);    // rules
void AddNatCommands(CLI::App& app, Commands& commands);      // pbx-config, doctor
void AddStatusCommands(CLI::App& app, Commands& commands);   // health, version
void AddEventCommands(CLI::App& app, Commands& commands);    // events

}  // namespace natpilot::cli
