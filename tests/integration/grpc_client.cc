#include "tests/integration/grpc_client.h"

namespace bridge::testing {

std::shared_ptr<::grpc::Channel> Connect(int port, ::grpc::ChannelArguments args) {
  return ::grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                     ::grpc::InsecureChannelCredentials(), args);
}

StreamReader::StreamReader(std::shared_ptr<::grpc::Channel> channel,
                           const v1::SubscribeRequest& request, const std::string& token,
                           Method method)
    : stub_(v1::Bridge::NewStub(channel)) {
  if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
  auto add = [this](const v1::Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (event.has_subscribed()) ++subscribed_;
    events_.push_back(event);
  };
  thread_ = std::thread([this, request, method, add] {
    ::grpc::Status st;
    if (method == Method::kSubscribe) {
      auto reader = stub_->Subscribe(&context_, request);
      v1::Event event;
      while (reader->Read(&event)) {
        absl::MutexLock lock(&mu_);
        add(event);
      }
      st = reader->Finish();
    } else {
      auto reader = stub_->SubscribeBatched(&context_, request);
      v1::EventBatch batch;
      while (reader->Read(&batch)) {
        absl::MutexLock lock(&mu_);
        batch_sizes_.push_back(batch.events_size());
        for (const v1::Event& event : batch.events()) add(event);
      }
      st = reader->Finish();
    }
    absl::MutexLock lock(&mu_);
    status_ = st;
    ended_ = true;
  });
}

StreamReader::~StreamReader() {
  context_.TryCancel();
  thread_.join();
}

bool StreamReader::WaitForEvents(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&] { return events_.size() >= n || ended_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return events_.size() >= n;
}

bool StreamReader::WaitSubscribed(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&] { return subscribed_ >= n || ended_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return subscribed_ >= n;
}

::grpc::Status StreamReader::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&] { return ended_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return ::grpc::Status(::grpc::StatusCode::DEADLINE_EXCEEDED, "stream did not end in time");
  }
  return status_;
}

std::vector<v1::Event> StreamReader::events() {
  absl::MutexLock lock(&mu_);
  return events_;
}

std::vector<size_t> StreamReader::batch_sizes() {
  absl::MutexLock lock(&mu_);
  return batch_sizes_;
}

}  // namespace bridge::testing
