#include "web/web_server.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>

#include "core/event_kinds.h"
#include "core/text.h"
#include "core/validate.h"
#include "web/assets.h"
#include "web/metrics.h"
#include "web/status_json.h"

namespace natpilot::web {
namespace {

using nlohmann::json;

// Never throws: a string that is not UTF-8 (text that slipped past the boundaries) is written with
// U+FFFD instead of ending the thread that writes it.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The HTTP status for an error classified once for both edges (core/error.h).
int HttpCode(const Error& e) {
  switch (Classify(e)) {
    case Errc::kInvalidArgument:
      return 400;
    case Errc::kNotFound:
      return 404;
    case Errc::kAlreadyExists:
    case Errc::kConflict:
    case Errc::kFailedPrecondition:
      return 409;
    case Errc::kPermissionDenied:
      return 403;
    case Errc::kResourceExhausted:
      return 429;
    case Errc::kUnauthenticated:
      return 401;
    case Errc::kUnavailable:
      return 502;
    case Errc::kInternal:
      return 500;
  }
  return 500;
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(Dump(body), "application/json");
}

std::string Sse(const char* type, const std::string& data) {
  return std::string("event: ") + type + "\ndata: " + data + "\n\n";
}

// f(), or fallback when it throws: logged with context, never escaping into httplib's threads.
template <typename T, typename F>
T LoggedOr(T fallback, const char* context, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    spdlog::error("web: {} failed: {}", context, e.what());
  } catch (...) {
    spdlog::error("web: {} failed: unknown exception", context);
  }
  return fallback;
}

// A handler that threw (a store read failing): logged, and a JSON 500 without the details.
void OnHandlerException(const httplib::Request& req, httplib::Response& res,
                        std::exception_ptr ep) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  spdlog::error("web: {} {} failed: {}", req.method, req.path, what);
  Reply(res, 500, {{"error", "internal error (see natpilotd's log)"}});
}

}  // namespace

struct WebServer::Client {
  std::string address;  // the page's
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> out;
  uint64_t dropped = 0;  // events a slow page missed (the backlog is bounded)
  bool status_dirty = true;
};

namespace {

thread_local bool overflow_connection = false;

// httplib's own pool queues every accepted connection without limit, each holding a descriptor.
// This one queues kQueuedConnections; past that a connection is served on the accepting thread,
// where the pre-routing handler answers 503 at once, and meanwhile nothing more is accepted: new
// connections wait in the kernel's backlog, not in natpilotd's descriptors.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(size_t workers, size_t queued) : max_queued_(queued) {
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock lock(mu_);
      if (jobs_.size() < max_queued_ && !shutdown_) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    overflow_connection = true;
    fn();
    overflow_connection = false;
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // shut down and drained
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool AllowedHost(std::string_view host, const std::vector<std::string>& names) {
  // Exact bytes: inet_pton would stop at a NUL and take "127.0.0.1\0.evil" for an address.
  if (host.empty() || host.size() > 255 ||
      host.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
          std::string_view::npos) {
    return false;
  }
  std::string_view name = host;
  if (name.front() == '[') {  // [v6]:port
    const size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    const std::string v6(name.substr(1, close - 1));
    const std::string_view rest = name.substr(close + 1);
    in6_addr a{};
    if (inet_pton(AF_INET6, v6.c_str(), &a) != 1) return false;
    return rest.empty() ||
           (rest.size() > 1 && rest.front() == ':' &&
            rest.substr(1).find_first_not_of("0123456789") == std::string_view::npos);
  }
  if (const size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = name.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string_view::npos)
      return false;
    name = name.substr(0, colon);
  }
  const std::string lower = Lower(name);
  in_addr a{};
  if (inet_pton(AF_INET, lower.c_str(), &a) == 1 || lower == "localhost") return true;
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return Lower(n) == lower; });
}

WebServer::WebServer(WebContext ctx, std::string listen)
    : ctx_(std::move(ctx)), listen_(std::move(listen)) {
  http_.new_task_queue = [] { return new BoundedPool(kWorkers, kQueuedConnections); };
  http_.set_payload_max_length(64 * 1024);
  http_.set_read_timeout(std::chrono::seconds(5));
  http_.set_keep_alive_max_count(20);
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (overflow_connection) {
      res.set_header("Retry-After", "5");
      Reply(res, 503,
            {{"error", "the status page is busy (too many connections); try again shortly"}});
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string asked = req.get_header_value("Host");
    if (!AllowedHost(asked, ctx_.host_names)) {
      Reply(res, 421,
            {{"error", "Host '" + SafeText(asked, 100) +
                           "' is not a name this server answers to: use its IP address or "
                           "localhost, or add the name to web.host_names"}});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_exception_handler(OnHandlerException);
  Routes();
}

WebServer::~WebServer() { Stop(); }

std::string WebServer::StatusText() {
  return Dump(Status(StatusInputs{ctx_.store, ctx_.gateway.Gateway(),
                                  TimePoint(Seconds(last_state_loss_.load())), Clock::now()}));
}

std::string WebServer::Metrics() {
  MetricsInputs in;
  if (auto ms = ctx_.store.ListMappings("")) in.mappings = std::move(*ms);
  LapseExpired(in.mappings, Clock::now());
  in.devices = ctx_.store.ListDevices().size();
  in.stats = ctx_.gateway.Stats();
  in.gateway = ctx_.gateway.Gateway();
  in.api_calls = ctx_.api_metrics.Snapshot();
  in.version = NATPILOT_VERSION;
  return MetricsText(in);
}

void WebServer::OnEvents(const std::vector<Event>& events) {
  for (const Event& e : events) {
    if (e.kind == event::kGatewayStateLost) {
      last_state_loss_ = std::chrono::duration_cast<Seconds>(e.at.time_since_epoch()).count();
    }
  }
  std::lock_guard lock(clients_mu_);
  std::vector<std::string> sse;
  sse.reserve(events.size());
  for (const Event& e : events) sse.push_back(Sse("natpilot", Dump(EventJson(e))));
  for (const auto& c : clients_) {
    std::lock_guard inner(c->mu);
    for (const std::string& s : sse) c->out.push_back(s);
    while (c->out.size() > kStreamBacklog) {  // a page that does not read: it misses the oldest
      c->out.pop_front();
      ++c->dropped;
    }
    c->status_dirty = true;
    c->cv.notify_all();
  }
}

void WebServer::Routes() {
  for (const Asset& a : Assets()) {
    const std::string path = a.path == "/index.html" ? std::string("/") : std::string(a.path);
    http_.Get(path, [a](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
      res.set_content(std::string(a.body), std::string(a.type));
    });
  }
  http_.Get("/api/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(StatusText(), "application/json");
  });
  http_.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
    json list = json::array();
    int64_t after = 0;
    try {
      after = req.has_param("after") ? std::stoll(req.get_param_value("after")) : 0;
    } catch (const std::exception&) {
      return Reply(res, 400, {{"error", "after must be an event id (a number)"}});
    }
    for (const Event& e : ctx_.store.ListEvents(after, 200)) list.push_back(EventJson(e));
    Reply(res, 200, list);
  });
  http_.Get("/api/stream", [this](const httplib::Request& req, httplib::Response& res) {
    auto client = std::make_shared<Client>();
    client->address = req.remote_addr;
    // Read before the client is counted: a failed read (500 from the exception handler) leaves no
    // slot taken.
    for (const Event& e : ctx_.store.ListEvents(0, 50))
      client->out.push_back(Sse("natpilot", Dump(EventJson(e))));
    {
      std::lock_guard lock(clients_mu_);
      if (clients_.size() >= kStreams) {
        return Reply(res, 503,
                     {{"error", "too many open status pages (" + std::to_string(kStreams) + ")"}});
      }
      const auto mine = std::count_if(clients_.begin(), clients_.end(),
                                      [&](const auto& c) { return c->address == client->address; });
      if (static_cast<size_t>(mine) >= kStreamsPerAddress) {
        return Reply(res, 429,
                     {{"error", "too many open status pages from " + client->address + " (" +
                                    std::to_string(kStreamsPerAddress) + ")"}});
      }
      clients_.insert(client);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, client](size_t, httplib::DataSink& sink) {
          // Runs after routing, outside httplib's catch: nothing may escape (the page reconnects).
          return LoggedOr(false, "the status page stream", [&] {
            std::deque<std::string> out;
            bool status = false;
            {
              std::unique_lock lock(client->mu);
              client->cv.wait_for(lock, std::chrono::seconds(15), [&] {
                return stopping_ || client->status_dirty || !client->out.empty();
              });
              if (stopping_) return false;
              out.swap(client->out);
              status = std::exchange(client->status_dirty, false);
              if (const uint64_t missed = std::exchange(client->dropped, 0)) {
                out.push_front(Sse("gap", "{\"missed\":" + std::to_string(missed) + "}"));
              }
            }
            if (out.empty() && !status) out.push_back(": keep-alive\n\n");  // finds closed pages
            if (status) out.push_back(Sse("status", StatusText()));
            for (const std::string& s : out) {
              if (!sink.write(s.data(), s.size())) return false;
            }
            return true;
          });
        },
        [this, client](bool) {
          std::lock_guard lock(clients_mu_);
          clients_.erase(client);
        });
  });
  http_.Get(R"(/rules/natpilot\.(nft|iptables|uci))", [this](const httplib::Request& req,
                                                             httplib::Response& res) {
    const std::string ext = req.matches[1];
    const rules::Format format = ext == "nft"        ? rules::Format::kNftables
                                 : ext == "iptables" ? rules::Format::kIptables
                                                     : rules::Format::kOpenwrt;
    auto input = StaticRulesInput(ctx_.store, false, Clock::now());
    if (!input) return Reply(res, HttpCode(input.error()), {{"error", input.error().message}});
    auto text = rules::Generate(format, *input, ctx_.static_rules.params);
    if (!text) return Reply(res, HttpCode(text.error()), {{"error", text.error().message}});
    res.set_header("Content-Disposition", "attachment; filename=\"natpilot." + ext + "\"");
    res.set_content(*text, "text/plain; charset=utf-8");
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });

  // Admin actions: the admin token in the Authorization header. A cross-site page can neither set
  // that header without a CORS preflight (which this server never approves) nor read the token.
  auto admin = [this](const httplib::Request& req,
                      httplib::Response& res) -> std::optional<std::string> {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && origin != "http://" + req.get_header_value("Host")) {
      Reply(res, 403, {{"error", "cross-site request refused (Origin " + origin + ")"}});
      return std::nullopt;
    }
    Credentials cred;
    cred.peer_ip = req.remote_addr;
    cred.carrier =
        "an \"Authorization: Bearer TOKEN\" header (the admin token is in natpilot-admin.token)";
    cred.via = " via web";
    const auto header = req.headers.find("Authorization");
    if (header != req.headers.end()) cred.authorization = header->second;
    auto caller = ctx_.auth.Authenticate(cred);
    if (caller) {
      if (auto admin_only = AdminOnly(*caller, "a change from the status page"); !admin_only) {
        caller = tl::unexpected(admin_only.error());
      }
    }
    if (!caller) {
      Reply(res, HttpCode(caller.error()), {{"error", caller.error().message}});
      return std::nullopt;
    }
    if (auto r = ctx_.write_limit.Allow(TokenKey(*caller)); !r) {
      Reply(res, 429, {{"error", r.error().message}});
      return std::nullopt;
    }
    return caller->label;
  };
  http_.Post("/api/devices", [this, admin](const httplib::Request& req, httplib::Response& res) {
    auto caller = admin(req, res);
    if (!caller) return;
    DeviceInput in;
    try {
      const json body = json::parse(req.body);
      in.name = body.at("name").get<std::string>();
      in.address = body.at("address").get<std::string>();
      if (body.contains("kind")) {
        auto kind = DeviceKindFromString(body["kind"].get<std::string>());
        if (!kind) return Reply(res, 400, {{"error", "kind must be ata, pbx, phone or other"}});
        in.kind = kind;
      }
      for (const char* key : {"sip", "rtp"}) {
        if (!body.contains(key) || body[key].get<std::string>().empty()) continue;
        auto range = ParsePortRange(body[key].get<std::string>(),
                                    key == std::string("sip") ? "SIP range" : "RTP range");
        if (!range) return Reply(res, 400, {{"error", range.error().message}});
        (key == std::string("sip") ? in.sip : in.rtp) = *range;
      }
      if (body.contains("description")) in.description = body["description"].get<std::string>();
    } catch (const std::exception&) {
      return Reply(res, 400,
                   {{"error",
                     "the body must be JSON: {\"name\", \"address\", optional \"kind\", \"sip\", "
                     "\"rtp\", \"description\"}"}});
    }
    auto registered = ctx_.registry.Register(in, *caller);
    if (!registered)
      return Reply(res, HttpCode(registered.error()),
                   {{"error", ForAdmin(registered.error()).message}});
    Reply(res, 201, {{"name", registered->device.name}, {"token", registered->token}});
  });
  http_.Delete(R"(/api/devices/([^/]+))", [this, admin](const httplib::Request& req,
                                                        httplib::Response& res) {
    auto caller = admin(req, res);
    if (!caller) return;
    auto removed = ctx_.registry.Remove(req.matches[1], *caller);
    if (!removed)
      return Reply(res, HttpCode(removed.error()), {{"error", removed.error().message}});
    Reply(res, 200, {{"removed", std::string(req.matches[1])}});
  });
}

void WebServer::Start() {
  const auto colon = listen_.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("web.listen '" + listen_ + "' is not HOST:PORT");
  std::string host = listen_.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen_.substr(colon + 1));
  } catch (const std::exception&) {
    throw std::runtime_error("web.listen '" + listen_ + "' has no port number");
  }
  for (const Event& e : ctx_.store.ListEvents(0, 10000)) {
    if (e.kind == event::kGatewayStateLost) {
      last_state_loss_ = std::chrono::duration_cast<Seconds>(e.at.time_since_epoch()).count();
    }
  }
  subscription_ =
      ctx_.bus.Subscribe([this](const std::vector<Event>& events) { OnEvents(events); });
  port_ = port == 0 ? http_.bind_to_any_port(host) : (http_.bind_to_port(host, port) ? port : -1);
  if (port_ <= 0)
    throw std::runtime_error("cannot listen on web.listen " + listen_ +
                             " (in use, or no permission)");
  thread_ = std::thread([this] {
    LoggedOr(false, "the HTTP listener", [this] { return http_.listen_after_bind(); });
  });
}

namespace {

// A connection's bytes in memory: what is read comes from `in`, what is written goes to `out`.
// Never writable for a streamed body (no server socket either), so /api/stream answers its
// headers and ends.
class MemoryStream final : public httplib::Stream {
 public:
  MemoryStream(std::string_view in, std::string remote) : in_(in), remote_(std::move(remote)) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return false; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, in_.size());
    std::copy_n(in_.data(), n, ptr);
    in_.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = remote_;
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "192.168.1.2";
    port = 8080;
  }
  socket_t socket() const override { return INVALID_SOCKET; }
  bool done() const { return in_.empty(); }
  std::string& out() { return out_; }

 private:
  std::string_view in_;
  std::string remote_;
  std::string out_;
};

}  // namespace

std::string WebServer::ServeBytes(std::string_view input, const std::string& remote) {
  MemoryStream stream(input, remote);
  bool closed = false;
  // Keep-alive: one request after another, as many as the bytes hold (bounded like a connection).
  for (size_t i = 0; i < 20 && !closed && !stream.done(); ++i) {
    if (!http_.ServeOne(stream, closed)) break;
  }
  return std::move(stream.out());
}

void WebServer::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  ctx_.bus.Unsubscribe(subscription_);
  {
    std::lock_guard lock(clients_mu_);
    for (const auto& c : clients_) {
      std::lock_guard inner(c->mu);
      c->cv.notify_all();
    }
  }
  http_.stop();
  thread_.join();
}

}  // namespace natpilot::web
