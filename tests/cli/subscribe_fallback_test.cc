// bridgectl subscribe against a server with SubscribeBatched and one without it (a Bridge
// older than the method): the same lines either way, through RunSubscribe itself.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/command_line.h"
#include "clients/cli/connection.h"
#include "clients/cli/stop_signal.h"
#include "clients/cli/subscribe_command.h"

namespace bridgectl {
namespace {

using bridge::v1::Event;
using bridge::v1::EventBatch;

// The events both servers send, in their two forms.
std::vector<Event> Events(const bridge::v1::SubscribeRequest& request) {
  std::vector<Event> events;
  Event subscribed;
  subscribed.mutable_subscribed()->set_channel(request.channels(0));
  events.push_back(subscribed);
  for (int i = 1; i <= 2; ++i) {
    Event message;
    message.mutable_message()->set_channel(request.channels(0));
    message.mutable_message()->set_payload("payload " + std::to_string(i));
    message.mutable_message()->set_seq(i);
    events.push_back(message);
  }
  return events;
}

// Subscribe only: gRPC answers SubscribeBatched with UNIMPLEMENTED, as an older Bridge does.
class OlderBridge : public bridge::v1::Bridge::Service {
 public:
  grpc::Status Subscribe(grpc::ServerContext*, const bridge::v1::SubscribeRequest* request,
                         grpc::ServerWriter<Event>* writer) override {
    ++subscribe_calls;
    for (const Event& e : Events(*request)) writer->Write(e);
    return grpc::Status::OK;
  }
  std::atomic<int> subscribe_calls{0};
};

// Both methods; bridgectl should call SubscribeBatched only.
class NewerBridge : public OlderBridge {
 public:
  grpc::Status SubscribeBatched(grpc::ServerContext*, const bridge::v1::SubscribeRequest* request,
                                grpc::ServerWriter<EventBatch>* writer) override {
    ++batched_calls;
    EventBatch batch;
    for (const Event& e : Events(*request)) *batch.add_events() = e;
    writer->Write(batch);
    return grpc::Status::OK;
  }
  std::atomic<int> batched_calls{0};
};

// Runs `bridgectl subscribe news --count 2` against `service`; returns what it printed.
// The servers end their streams after the events: bridgectl stops at the second message.
std::string Subscribe(grpc::Service* service, StopSignal& stop) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  Options options;
  options.command = Command::kSubscribe;
  options.addr = "127.0.0.1:" + std::to_string(port);
  options.channels = {"news"};
  options.count = 2;
  std::ostringstream out, err;
  EXPECT_EQ(RunSubscribe(options, stop, out, err), kExitOk) << err.str();
  EXPECT_EQ(err.str(), "");
  server->Shutdown();
  return out.str();
}

TEST(SubscribeFallbackTest, BatchedByDefaultSubscribeAgainstAnOlderServer) {
  StopSignal stop;
  NewerBridge newer;
  const std::string from_newer = Subscribe(&newer, stop);
  EXPECT_EQ(newer.batched_calls, 1);
  EXPECT_EQ(newer.subscribe_calls, 0);

  OlderBridge older;
  const std::string from_older = Subscribe(&older, stop);
  EXPECT_EQ(older.subscribe_calls, 1);

  EXPECT_EQ(from_older, from_newer);
  EXPECT_NE(from_newer.find("payload 2"), std::string::npos) << from_newer;
  EXPECT_EQ(std::count(from_newer.begin(), from_newer.end(), '\n'), 3) << from_newer;
}

TEST(SubscribeFallbackTest, OnlyAnUnimplementedBeforeAnyEventFallsBack) {
  EXPECT_TRUE(FallBackToSubscribe(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""), false));
  EXPECT_FALSE(FallBackToSubscribe(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""), true));
  EXPECT_FALSE(FallBackToSubscribe(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""), false));
  EXPECT_FALSE(FallBackToSubscribe(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, ""), false));
  EXPECT_FALSE(FallBackToSubscribe(grpc::Status::OK, false));
}

}  // namespace
}  // namespace bridgectl
