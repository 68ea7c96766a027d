// natpilot: the command-line client of natpilotd's gRPC API. The commands are in cmd_*.cc.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli_common.h"

int main(int argc, char** argv) {
  namespace cli = natpilot::cli;
  CLI::App app{"natpilot: talk to natpilotd (devices, mappings, gateway, events)"};
  app.require_subcommand(1);
  app.fallthrough();
  cli::Options o;
  app.add_option("--socket", o.socket, "natpilotd's unix socket")->capture_default_str();
  app.add_option("--server", o.server, "natpilotd's TCP address HOST:PORT instead of the socket");
  app.add_flag("--json", o.json, "machine-readable JSON output");
  app.add_option("--token", o.token, "API token for --server (admin or device); or NATPILOT_TOKEN");
  app.add_option("--token-file", o.token_file, "read the API token from this file");
  app.add_option("--tls-ca", o.tls_ca,
                 "CA certificate (PEM) of natpilotd's TLS listener; turns TLS on");
  app.add_option("--tls-cert", o.tls_cert, "client certificate (PEM), when natpilotd asks for one");
  app.add_option("--tls-key", o.tls_key, "client key (PEM) for --tls-cert");
  app.add_option("--tls-server-name", o.tls_server_name,
                 "name to check in natpilotd's certificate");

  // Subcommands inherit the settings above (fallthrough, at most one subcommand): add them after.
  cli::Commands commands;
  cli::AddDeviceCommands(app, commands);
  cli::AddMappingCommands(app, commands);
  cli::AddGatewayCommands(app, commands);
  cli::AddRulesCommands(app, commands);
  cli::AddNatCommands(app, commands);
  cli::AddStatusCommands(app, commands);
  cli::AddEventCommands(app, commands);

  CLI11_PARSE(app, argc, argv);

  if (commands.RunLocal()) return 0;
  try {
    cli::ChooseToken(o);
    commands.Run(o, cli::Connect(o));
  } catch (const cli::CliError& e) {
    std::cerr << "natpilot: " << e.message << "\n";
    return e.exit_code;
  }
  return 0;
}
