// Counts of gRPC calls by method and status, taken by a server interceptor, for /metrics.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace natpilot {

class ApiMetrics {
 public:
  // Counts a call by its method path; paths of methods natpilotd does not serve count as "other".
  void Count(const std::string& method, int code);
  static std::string Known(const std::string& path);
  std::map<std::pair<std::string, int>, uint64_t> Snapshot() const;
  // The factory to give grpc::ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> calls_;
};

}  // namespace natpilot
