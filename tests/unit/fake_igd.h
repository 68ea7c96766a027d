// A scripted UPnP IGD on loopback (cpp-httplib): a root description and a WANIPConnection control
// URL whose answers a test sets, for the router quirks miniupnpd never produces (725, 402, 728...).
// Real HTTP and SOAP on real sockets; UpnpMapper talks to it as to any router.
#pragma once

#include <httplib.h>

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
  };
  // Answer for an action: an error code, or success. Set before the calls.
  std::map<std::string, std::vector<int>> errors;  // action -> error codes, consumed in order
  std::string external_address = "198.51.100.7";
  int version = 1;  // 2: WANIPConnection:2 with AddAnyPortMapping

  explicit FakeIgd(int igd_version = 1) : version(igd_version) {
    server_.Get("/rootDesc.xml", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(RootDesc(), "text/xml");
    });
    server_.Post("/ctl/IPConn", [this](const httplib::Request& req, httplib::Response& res) {
      Control(req, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeIgd() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/rootDesc.xml"; }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // The mapping table: "UDP 5060" -> internal client.
  std::map<std::string, std::string> table;

 private:
  std::string RootDesc() const {
    const std::string base = "http://127.0.0.1:" + std::to_string(port_);
    return R"(<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>)"
           "<URLBase>" + base + "</URLBase>" +
           R"(<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>fake</friendlyName><UDN>uuid:fake-igd</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL><SCPDURL>/WANCfg.xml</SCPDURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:)" + std::to_string(version) + R"(</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList></device></deviceList></device></deviceList></device></root>)";
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
    Call call{action, {}};
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
    if (error) {
      res.status = 500;
      res.set_content(Envelope("<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>" +
                               std::to_string(*error) + "</errorCode><errorDescription>scripted</errorDescription></UPnPError></detail></s:Fault>"),
                      "text/xml");
      return;
    }
    const std::string u = "<u:" + action + "Response xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:" +
                          std::to_string(version) + "\">";
    const std::string end = "</u:" + action + "Response>";
    std::string out;
    const std::string key = call.args["NewProtocol"] + " " + call.args["NewExternalPort"];
    if (action == "GetExternalIPAddress") {
      out = "<NewExternalIPAddress>" + external_address + "</NewExternalIPAddress>";
    } else if (action == "GetStatusInfo") {
      out = "<NewConnectionStatus>Connected</NewConnectionStatus><NewLastConnectionError>ERROR_NONE</NewLastConnectionError><NewUptime>100</NewUptime>";
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

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Call> calls_;
};

}  // namespace natpilot::testing
