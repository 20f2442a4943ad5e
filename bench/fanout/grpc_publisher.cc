#include "bench/fanout/grpc_publisher.h"

#include <chrono>
#include <cstdio>

namespace bridge::bench {
namespace {

// Bridge answers a publish within 5 s (its publish timeout) or says why not.
constexpr auto kCallDeadline = std::chrono::seconds(10);

}  // namespace

struct GrpcPublisher::Call {
  ::grpc::ClientContext context;
  v1::PublishRequest request;
  v1::PublishResponse response;
  ::grpc::Status status;
  std::unique_ptr<::grpc::ClientAsyncResponseReader<v1::PublishResponse>> reader;
};

GrpcPublisher::GrpcPublisher(const std::string& target) {
  ::grpc::ChannelArguments args;
  // A connection of its own, apart from the subscribers' streams.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("bridge.bench.publisher", 1);
  channel_ = ::grpc::CreateCustomChannel(target, ::grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Bridge::NewStub(channel_);
}

GrpcPublisher::~GrpcPublisher() {
  Collect(true, 0);
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
  }
}

absl::Status GrpcPublisher::Connect(double timeout_seconds) {
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1e3));
  if (!channel_->WaitForConnected(deadline)) {
    return absl::UnavailableError("publisher: the server's gRPC port does not answer");
  }
  return absl::OkStatus();
}

void GrpcPublisher::Publish(const std::string& channel, const std::string& payload) {
  auto* call = new Call;
  call->context.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  call->request.set_channel(channel);
  call->request.set_payload(payload);
  call->reader = stub_->PrepareAsyncPublish(&call->context, call->request, &cq_);
  call->reader->StartCall();
  call->reader->Finish(&call->response, &call->status, call);
  ++in_flight_;
}

void GrpcPublisher::Collect(bool block, uint64_t keep) {
  while (in_flight_ > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (block && in_flight_ > keep) {
      if (!cq_.Next(&tag, &ok)) return;
    } else {
      // A deadline in the past: what has completed, and the I/O that is ready.
      const auto status = cq_.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
      if (status != ::grpc::CompletionQueue::GOT_EVENT) return;
    }
    Done(static_cast<Call*>(tag), ok);
  }
}

void GrpcPublisher::Done(Call* call, bool ok) {
  --in_flight_;
  if (!ok || !call->status.ok()) {
    if (errors_++ == 0) {
      std::fprintf(stderr, "fanout_bench: publish failed: %s (further failures counted)\n",
                   call->status.error_message().c_str());
    }
  } else if (call->response.offset() > 0) {
    ++durable_;
    if (call->response.offset() > top_offset_) {
      top_offset_ = call->response.offset();
      epoch_ = call->response.epoch();
    }
  }
  delete call;
}

}  // namespace bridge::bench
