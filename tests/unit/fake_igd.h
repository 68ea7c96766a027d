// A scripted UPnP IGD on loopback (cpp-httplib): a root description and a WANIPConnection control
// URL whose answers a test sets, for the router quirks miniupnpd never produces (725, 402, 728...).
// Real HTTP and SOAP on real sockets; UpnpMapper talks to it as to any router.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace natpilot::testing {

class FakeIgd {
 public:
  struct Call {
    std::string action;
    std::map<std::string, std::string> args;
    std::string path;  // the control URL's path: which connection service
  };
  // Answer for an action: an error code, or success. Set before the calls.
  std::map<std::string, std::vector<int>> errors;  // action -> error codes, consumed in order
  std::string external_address = "198.51.100.7";
  int version = 1;  // 2: WANIPConnection:2 with AddAnyPortMapping
  // The WAN connection services after the first (WANIPConnection:<version> at /ctl/IPConn), each
  // with its type ("WANPPPConnection:1") and the status its GetStatusInfo answers.
  struct Connection {
    std::string type;
    std::string status = "Connected";
  };
  std::string first_status = "Connected";
  std::vector<Connection> more_connections;  // at /ctl/Conn1, /ctl/Conn2, ...
  std::string device_type = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
  std::string friendly_name = "fake";
  std::string control_base;  // the control URLs' origin; "" = this server's own
  std::string root_desc;     // a description to serve instead of the generated one
  std::atomic<int> description_gets{0};
  // action -> the answer's inner XML, as sent (a hostile or odd router's fields). Set before calls.
  std::map<std::string, std::string> answers;

  explicit FakeIgd(int igd_version = 1, std::string host = "127.0.0.1")
      : version(igd_version), host_(std::move(host)) {
    server_.Get("/rootDesc.xml", [this](const httplib::Request&, httplib::Response& res) {
      ++description_gets;
      res.set_content(root_desc.empty() ? RootDesc() : root_desc, "text/xml");
    });
    server_.Post(R"(/ctl/(\w+))", [this](const httplib::Request& req, httplib::Response& res) {
      Control(req, res);
    });
    port_ = server_.bind_to_any_port(host_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeIgd() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return origin() + "/rootDesc.xml"; }
  std::string origin() const { return "http://" + host_ + ":" + std::to_string(port_); }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // The mapping table: "UDP 5060" -> internal client.
  std::map<std::string, std::string> table;

 private:
  static std::string Service(const std::string& type, const std::string& control) {
    return "<service><serviceType>urn:schemas-upnp-org:service:" + type +
           "</serviceType><serviceId>urn:upnp-org:serviceId:" + type.substr(0, type.find(':')) +
           "</serviceId><controlURL>" + control +
           "</controlURL><eventSubURL>/evt/x</eventSubURL><SCPDURL>/x.xml</SCPDURL></service>";
  }
  std::string RootDesc() const {
    const std::string base = control_base.empty() ? origin() : control_base;
    std::string connections = Service("WANIPConnection:" + std::to_string(version), "/ctl/IPConn");
    for (size_t i = 0; i < more_connections.size(); ++i) {
      connections += Service(more_connections[i].type, "/ctl/Conn" + std::to_string(i + 1));
    }
    return R"(<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>)"
           "<URLBase>" +
           base + "</URLBase>" + "<device><deviceType>" + device_type +
           "</deviceType><friendlyName>" + friendly_name +
           R"(</friendlyName><manufacturer>Fake</manufacturer><modelName>IGD</modelName><UDN>uuid:fake-igd</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><serviceList>)" +
           Service("WANCommonInterfaceConfig:1", "/ctl/CmnIfCfg") +
           R"(</serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList>)" +
           connections +
           "</serviceList></device></deviceList></device></deviceList></device></root>";
  }
  static std::string Envelope(const std::string& body) {
    return R"(<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>)" +
           body + "</s:Body></s:Envelope>";
  }
  void Control(const httplib::Request& req, httplib::Response& res) {
    const std::string soap = req.get_header_value("SOAPAction");
    const auto hash = soap.find('#');
    std::string action = soap.substr(hash + 1);
    if (!action.empty() && action.back() == '"') action.pop_back();
    Call call{action, {}, req.path};
    static const std::regex arg("<(New[A-Za-z]+)>([^<]*)</New[A-Za-z]+>");
    for (std::sregex_iterator it(req.body.begin(), req.body.end(), arg), end; it != end; ++it) {
      call.args[(*it)[1]] = (*it)[2];
    }
    std::optional<int> error;
    {
      std::lock_guard lock(mu_);
      calls_.push_back(call);
      auto& queue = errors[action];
      if (!queue.empty()) {
        error = queue.front();
        queue.erase(queue.begin());
      }
    }
    if (error && *error != 0) {  // 0 in the queue: this call answers normally
      res.status = 500;
      res.set_content(Envelope("<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</"
                               "faultstring><detail><UPnPError "
                               "xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>" +
                               std::to_string(*error) +
                               "</errorCode><errorDescription>scripted</errorDescription></"
                               "UPnPError></detail></s:Fault>"),
                      "text/xml");
      return;
    }
    const std::string u = "<u:" + action +
                          "Response xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:" +
                          std::to_string(version) + "\">";
    const std::string end = "</u:" + action + "Response>";
    std::string out;
    const std::string key = call.args["NewProtocol"] + " " + call.args["NewExternalPort"];
    if (auto scripted = answers.find(action); scripted != answers.end()) {
      out = scripted->second;
    } else if (action == "GetExternalIPAddress") {
      out = "<NewExternalIPAddress>" + external_address + "</NewExternalIPAddress>";
    } else if (action == "GetStatusInfo") {
      std::string status = first_status;
      for (size_t i = 0; i < more_connections.size(); ++i) {
        if (req.path == "/ctl/Conn" + std::to_string(i + 1)) status = more_connections[i].status;
      }
      out = "<NewConnectionStatus>" + status +
            "</NewConnectionStatus><NewLastConnectionError>ERROR_NONE</"
            "NewLastConnectionError><NewUptime>100</NewUptime>";
    } else if (action == "AddPortMapping") {
      std::lock_guard lock(mu_);
      table[key] = call.args["NewInternalClient"];
    } else if (action == "AddAnyPortMapping") {
      // Like miniupnpd: the asked port if free or ours, else the next free one.
      std::lock_guard lock(mu_);
      int port = std::stoi(call.args["NewExternalPort"]);
      auto taken = [&](int p) {
        auto it = table.find(call.args["NewProtocol"] + " " + std::to_string(p));
        return it != table.end() && it->second != call.args["NewInternalClient"];
      };
      while (taken(port)) ++port;
      table[call.args["NewProtocol"] + " " + std::to_string(port)] = call.args["NewInternalClient"];
      out = "<NewReservedPort>" + std::to_string(port) + "</NewReservedPort>";
    } else if (action == "DeletePortMapping") {
      std::lock_guard lock(mu_);
      table.erase(key);
    }
    res.set_content(Envelope(u + out + end), "text/xml");
  }

  std::string host_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Call> calls_;
};

}  // namespace natpilot::testing
