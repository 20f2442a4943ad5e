#include "tests/integration/grpc_client.h"

namespace bridge::testing {

std::shared_ptr<::grpc::Channel> Connect(int port, ::grpc::ChannelArguments args) {
  return ::grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                     ::grpc::InsecureChannelCredentials(), args);
}

StreamReader::StreamReader(std::shared_ptr<::grpc::Channel> channel,
                           const v1::SubscribeRequest& request, const std::string& token)
    : stub_(v1::Bridge::NewStub(channel)) {
  if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
  thread_ = std::thread([this, request] {
    auto reader = stub_->Subscribe(&context_, request);
    v1::Event event;
    while (reader->Read(&event)) {
      absl::MutexLock lock(&mu_);
      if (event.has_subscribed()) ++subscribed_;
      events_.push_back(event);
    }
    ::grpc::Status st = reader->Finish();
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

}  // namespace bridge::testing
