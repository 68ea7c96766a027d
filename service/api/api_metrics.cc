#include "api/api_metrics.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>

namespace natpilot {
namespace {

namespace gx = grpc::experimental;

class CountingInterceptor final : public gx::Interceptor {
 public:
  CountingInterceptor(ApiMetrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(gx::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.Count(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  ApiMetrics& metrics_;
  std::string method_;
};

class Factory final : public gx::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(ApiMetrics& metrics) : metrics_(metrics) {}
  gx::Interceptor* CreateServerInterceptor(gx::ServerRpcInfo* info) override {
    return new CountingInterceptor(metrics_, info->method() ? info->method() : "");
  }

 private:
  ApiMetrics& metrics_;
};

}  // namespace

std::string ApiMetrics::Known(const std::string& path) {
  // "/package.Service/Method" -> "package.Service.Method", looked up among the compiled-in
  // services: a caller's made-up path is counted as "other" (it must neither grow the map nor put
  // its bytes into the metrics text).
  if (path.size() < 4 || path.size() > 200 || path[0] != '/') return "other";
  std::string full = path.substr(1);
  const auto slash = full.find('/');
  if (slash == std::string::npos || full.find('/', slash + 1) != std::string::npos) return "other";
  full[slash] = '.';
  const auto* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full);
  return m != nullptr ? path : "other";
}

void ApiMetrics::Count(const std::string& method, int code) {
  const std::string key = Known(method);
  if (code < 0 || code > 16) code = 2;  // UNKNOWN
  std::lock_guard lock(mu_);
  ++calls_[{key, code}];
}

std::map<std::pair<std::string, int>, uint64_t> ApiMetrics::Snapshot() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::unique_ptr<gx::ServerInterceptorFactoryInterface> ApiMetrics::InterceptorFactory() {
  return std::make_unique<Factory>(*this);
}

}  // namespace natpilot
