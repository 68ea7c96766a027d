#include "api/api_metrics.h"

namespace natpilot {
namespace {

namespace gx = grpc::experimental;

class CountingInterceptor final : public gx::Interceptor {
 public:
  CountingInterceptor(ApiMetrics& metrics, std::string method) : metrics_(metrics), method_(std::move(method)) {}
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

void ApiMetrics::Count(const std::string& method, int code) {
  std::lock_guard lock(mu_);
  ++calls_[{method, code}];
}

std::map<std::pair<std::string, int>, uint64_t> ApiMetrics::Snapshot() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::unique_ptr<gx::ServerInterceptorFactoryInterface> ApiMetrics::InterceptorFactory() {
  return std::make_unique<Factory>(*this);
}

}  // namespace natpilot
