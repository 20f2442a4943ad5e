#ifndef BRIDGE_TESTS_INTEGRATION_GRPC_CLIENT_H_
#define BRIDGE_TESTS_INTEGRATION_GRPC_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::testing {

std::shared_ptr<::grpc::Channel> Connect(int port, ::grpc::ChannelArguments args = {});

// The two streaming methods of bridge.v1.Bridge, which carry the same events.
enum class Method { kSubscribe, kSubscribeBatched };

// One Subscribe (or SubscribeBatched) stream read on its own thread; the test waits on
// what it received. A batched stream's events are listed one by one, as Subscribe's.
class StreamReader {
 public:
  // A non-empty `token` goes with the call as `authorization: Bearer <token>`.
  StreamReader(std::shared_ptr<::grpc::Channel> channel, const v1::SubscribeRequest& request,
               const std::string& token = "", Method method = Method::kSubscribe);
  ~StreamReader();

  // Waits until `n` events arrived (true) or the stream ended / time ran out (false).
  bool WaitForEvents(size_t n, absl::Duration timeout = absl::Seconds(20));
  // Waits until the stream ended; returns its status.
  ::grpc::Status WaitForEnd(absl::Duration timeout = absl::Seconds(20));
  // Waits for `n` Subscribed events.
  bool WaitSubscribed(size_t n = 1, absl::Duration timeout = absl::Seconds(20));
  std::vector<v1::Event> events();
  // SubscribeBatched: the number of events of each batch received.
  std::vector<size_t> batch_sizes();
  void Cancel() { context_.TryCancel(); }

 private:
  ::grpc::ClientContext context_;
  std::unique_ptr<v1::Bridge::Stub> stub_;
  absl::Mutex mu_;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
  size_t subscribed_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  ::grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

inline v1::SubscribeRequest Channels(std::vector<std::string> channels,
                                     std::vector<std::string> patterns = {}) {
  v1::SubscribeRequest r;
  for (auto& c : channels) r.add_channels(c);
  for (auto& p : patterns) r.add_patterns(p);
  return r;
}

}  // namespace bridge::testing

#endif  // BRIDGE_TESTS_INTEGRATION_GRPC_CLIENT_H_
