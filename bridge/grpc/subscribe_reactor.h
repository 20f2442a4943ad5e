#ifndef BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_
#define BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bridge/grpc/write_pump.h"
#include "bridge/hub/hub.h"

namespace bridge::grpc_frontend {

// One Subscribe stream: a hub subscriber whose events it writes, one write in flight.
// Events are taken from the hub a batch at a time and written with gRPC's buffer hint on
// all but the last, so that a batch leaves in one transport write. StartWrite is called
// outside the lock: gRPC may run OnWriteDone before StartWrite returns. The hub's wake-up
// (OnReady) hands the stream to the WritePump, whose thread starts the first write of a
// burst; OnWriteDone, on gRPC's threads, starts the ones after it.
//
// Owns itself: Start() makes it and keeps a reference to itself until gRPC calls
// OnDone; the hub holds another (as the subscriber's Sink) until Hub::Disconnect, and the
// pump one while the stream is listed.
class SubscribeReactor : public ::grpc::ServerWriteReactor<::grpc::ByteBuffer>,
                         public hub::Sink,
                         public WritePump::Writer,
                         public std::enable_shared_from_this<SubscribeReactor> {
 public:
  // Connects a subscriber for the request's channels and patterns, or finishes at once
  // with the error. Returns the reactor for gRPC to drive.
  static ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* Start(
      hub::Hub* hub, WritePump* pump, const hub::SubscriberOptions& options,
      ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request);

  SubscribeReactor(hub::Hub* hub, WritePump* pump);

  // hub::Sink: lists the stream with the pump.
  void OnReady() override;
  // WritePump::Writer.
  void WriteNext() override ABSL_LOCKS_EXCLUDED(mu_);

  // ServerWriteReactor.
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override;

 private:
  // Takes the next event to write, if none is in flight and one is queued: true with the
  // bytes and options for StartWrite, which the caller makes once the lock is released.
  bool NextWriteLocked(const ::grpc::ByteBuffer** next, ::grpc::WriteOptions* options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides the one Finish of the RPC; sent once no write is in flight.
  void FinishLocked(::grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  hub::Hub* const hub_;
  WritePump* const pump_;
  std::shared_ptr<hub::Subscriber> subscriber_;
  // Kept alive by gRPC's calls into this object until OnDone drops it.
  std::shared_ptr<SubscribeReactor> self_;

  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Taken from the hub, written from batch_next_ on.
  std::vector<hub::Event> batch_ ABSL_GUARDED_BY(mu_);
  size_t batch_next_ ABSL_GUARDED_BY(mu_) = 0;
  // The first write (which carries the response headers) has been started.
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;
  // The event being written: it keeps the shared message (and its bytes) alive.
  hub::Event in_flight_ ABSL_GUARDED_BY(mu_);
  ::grpc::ByteBuffer control_buffer_ ABSL_GUARDED_BY(mu_);
  std::optional<::grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_
