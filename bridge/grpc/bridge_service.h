#ifndef BRIDGE_GRPC_BRIDGE_SERVICE_H_
#define BRIDGE_GRPC_BRIDGE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "bridge/auth/access.h"
#include "bridge/grpc/write_pump.h"
#include "bridge/hub/hub.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::grpc_frontend {

// bridge.v1.Bridge on the callback API. Subscribe and SubscribeBatched are raw methods so
// each stream writes the serialized Events shared by every stream (see event_codec.h),
// one SubscribeReactor each, in its two forms; Publish and History are raw too, so that a
// request that does not decode gets INVALID_ARGUMENT, as a Subscribe does, rather than
// gRPC's bare UNIMPLEMENTED. The hub must outlive the service.
class BridgeService final
    : public v1::Bridge::WithRawCallbackMethod_Subscribe<v1::Bridge::WithRawCallbackMethod_Publish<
          v1::Bridge::WithRawCallbackMethod_SubscribeBatched<
              v1::Bridge::WithRawCallbackMethod_History<v1::Bridge::Service>>>> {
 public:
  // `subscriber` bounds every stream: queue limits, slow-consumer policy, and
  // max_topics, the most channels plus patterns one request may name. `access` says which
  // calls may subscribe to and publish what; it must outlive the service.
  BridgeService(hub::Hub* hub, const hub::SubscriberOptions& subscriber,
                const auth::Access& access = auth::Access::Open());

  ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* Subscribe(
      ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) override;
  ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* SubscribeBatched(
      ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request) override;
  ::grpc::ServerUnaryReactor* Publish(::grpc::CallbackServerContext* context,
                                      const ::grpc::ByteBuffer* request,
                                      ::grpc::ByteBuffer* response) override;
  ::grpc::ServerUnaryReactor* History(::grpc::CallbackServerContext* context,
                                      const ::grpc::ByteBuffer* request,
                                      ::grpc::ByteBuffer* response) override;

  // Subscribe and SubscribeBatched streams open now.
  size_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }

 private:
  hub::Hub* const hub_;
  const hub::SubscriberOptions subscriber_;
  const auth::Access& access_;
  std::atomic<size_t> open_streams_{0};
  WritePump pump_;
};

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_BRIDGE_SERVICE_H_
