#ifndef BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_
#define BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bridge/auth/access.h"
#include "bridge/grpc/write_pump.h"
#include "bridge/hub/hub.h"

namespace bridge::grpc_frontend {

// One Subscribe or SubscribeBatched stream: a hub subscriber whose events it writes, one
// write in flight. Both methods share everything (checks, errors, events, shutdown, the
// slow-consumer cancel) but the form of a write (Form). A Subscribe stream takes events
// from the hub a batch at a time and writes each as one gRPC message, with gRPC's buffer
// hint on all but the last, so that a batch leaves in one transport write. A
// SubscribeBatched stream writes what it took as one EventBatch, made of the events'
// shared slices (event_codec.h). StartWrite is called
// outside the lock: gRPC may run OnWriteDone before StartWrite returns. The hub's wake-up
// (OnReady) hands the stream to the WritePump, whose thread starts the first write of a
// burst; OnWriteDone, on gRPC's threads, starts the ones after it.
//
// A client that stops reading stalls the write in flight (HTTP/2 flow control); if the hub
// then closes the subscriber as a slow consumer, the stream cancels its call rather than
// wait for a completion that comes only when the client reads again.
//
// Owns itself: Start() makes it and keeps a reference to itself until gRPC calls
// OnDone; the hub holds another (as the subscriber's Sink) until Hub::Disconnect, and the
// pump one while the stream is listed.
class SubscribeReactor : public ::grpc::ServerWriteReactor<::grpc::ByteBuffer>,
                         public hub::Sink,
                         public WritePump::Writer,
                         public std::enable_shared_from_this<SubscribeReactor> {
 public:
  // What one write carries.
  enum class Form {
    kEvent,  // Subscribe: one bridge.v1.Event
    kBatch,  // SubscribeBatched: one bridge.v1.EventBatch
  };

  // A batch holds at most this many events, and at most kMaxBatchBytes of encoded events
  // unless its first event alone is larger (a large message goes alone). Every event
  // queued when the write starts goes into it, up to these caps.
  static constexpr size_t kMaxBatchEvents = 256;
  static constexpr size_t kMaxBatchBytes = 64 * 1024;

  // Connects a subscriber for the request's channels and patterns, or finishes at once
  // with the error (UNAUTHENTICATED or PERMISSION_DENIED when `access` refuses the call).
  // Returns the reactor for gRPC to drive.
  // `open_streams` counts the reactors alive.
  static ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* Start(
      hub::Hub* hub, WritePump* pump, std::atomic<size_t>* open_streams,
      const hub::SubscriberOptions& options, const auth::Access& access, Form form,
      ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request);

  SubscribeReactor(hub::Hub* hub, WritePump* pump, std::atomic<size_t>* open_streams, Form form,
                   ::grpc::CallbackServerContext* context);
  ~SubscribeReactor() override;

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
  // NextWriteLocked's two forms, once it knows that a write may start.
  bool NextEventLocked(const ::grpc::ByteBuffer** next, ::grpc::WriteOptions* options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NextBatchLocked(const ::grpc::ByteBuffer** next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Woken while a write is in flight, which only a closing subscriber does: true if the
  // hub closed it as a slow consumer, whose stalled write may never complete, so that the
  // caller cancels the call (see CancelStalled). Decides the status and holds Finish back.
  bool ShouldCancelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels the call with `status`, then lets the decided Finish go.
  void CancelStalled(const ::grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Decides the one Finish of the RPC; sent once no write is in flight and no cancel is
  // under way.
  void FinishLocked(::grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  hub::Hub* const hub_;
  WritePump* const pump_;
  std::atomic<size_t>* const open_streams_;
  const Form form_;
  // Valid until OnDone, which cannot come before Finish: CancelStalled, which runs outside
  // the lock, uses it only while cancelling_ holds Finish back.
  ::grpc::CallbackServerContext* const context_;
  // Kept alive by gRPC's calls into this object until OnDone drops it.
  std::shared_ptr<SubscribeReactor> self_;

  absl::Mutex mu_;
  // Null until Start has it: the hub may wake the stream (Hub::Shutdown) as soon as
  // Connect made the subscriber, before Start stored it.
  std::shared_ptr<hub::Subscriber> subscriber_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // CancelStalled is calling TryCancel: Finish (and so OnDone) must wait.
  bool cancelling_ ABSL_GUARDED_BY(mu_) = false;
  // Taken from the hub, written from batch_next_ on.
  std::vector<hub::Event> batch_ ABSL_GUARDED_BY(mu_);
  size_t batch_next_ ABSL_GUARDED_BY(mu_) = 0;
  // The first write (which carries the response headers) has been started.
  bool headers_sent_ ABSL_GUARDED_BY(mu_) = false;
  // The event being written (kEvent, and a kBatch of one message): it keeps the shared
  // message (and its bytes) alive.
  hub::Event in_flight_ ABSL_GUARDED_BY(mu_);
  ::grpc::ByteBuffer control_buffer_ ABSL_GUARDED_BY(mu_);
  // kBatch: the EventBatch being written (its slices hold the events' bytes), and the
  // slices of the next one while it is gathered.
  ::grpc::ByteBuffer batch_buffer_ ABSL_GUARDED_BY(mu_);
  std::vector<::grpc::Slice> slices_ ABSL_GUARDED_BY(mu_);
  std::optional<::grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bridge::grpc_frontend

#endif  // BRIDGE_GRPC_SUBSCRIBE_REACTOR_H_
