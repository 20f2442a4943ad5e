// bridgectl subscribe --reconnect against an in-process server whose first stream breaks:
// the second stream asks to resume the durable channel after the last offset printed, and
// only the plain channel gets a client-side gap.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bridge/v1/bridge.grpc.pb.h"
#include "clients/cli/command_line.h"
#include "clients/cli/connection.h"
#include "clients/cli/stop_signal.h"
#include "clients/cli/subscribe_command.h"

namespace bridgectl {
namespace {

using bridge::v1::Event;
using bridge::v1::EventBatch;

Event Subscribed(const std::string& channel) {
  Event e;
  e.mutable_subscribed()->set_channel(channel);
  return e;
}

Event Message(const std::string& channel, uint64_t seq, uint64_t offset, bool recovered) {
  Event e;
  bridge::v1::Message* m = e.mutable_message();
  m->set_channel(channel);
  m->set_seq(seq);
  m->set_payload(absl::StrCat("m", offset));
  if (offset != 0) {
    m->set_offset(offset);
    m->set_epoch("e1");
    m->set_recovered(recovered);
  }
  return e;
}

// The first stream carries orders@2 and orders@3 and one plain message, then breaks as a
// Bridge going away does; the second recovers orders@4 and goes on live with orders@5.
class BreakingBridge : public bridge::v1::Bridge::Service {
 public:
  grpc::Status SubscribeBatched(grpc::ServerContext*, const bridge::v1::SubscribeRequest* request,
                                grpc::ServerWriter<EventBatch>* writer) override {
    int call;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(*request);
      call = static_cast<int>(requests_.size());
    }
    EventBatch batch;
    if (call == 1) {
      for (const Event& e :
           {Subscribed("orders"), Subscribed("news"), Message("orders", 1, 2, false),
            Message("news", 1, 0, false), Message("orders", 2, 3, false)}) {
        *batch.add_events() = e;
      }
      writer->Write(batch);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
    }
    for (const Event& e : {Subscribed("orders"), Subscribed("news"), Message("orders", 0, 4, true),
                           Message("orders", 1, 5, false)}) {
      *batch.add_events() = e;
    }
    writer->Write(batch);
    return grpc::Status::OK;
  }

  std::vector<bridge::v1::SubscribeRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  absl::Mutex mu_;
  std::vector<bridge::v1::SubscribeRequest> requests_ ABSL_GUARDED_BY(mu_);
};

TEST(SubscribeResumeTest, AReconnectResumesTheDurableChannel) {
  StopSignal stop;
  BreakingBridge service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();

  Options options;
  options.command = Command::kSubscribe;
  options.addr = "127.0.0.1:" + std::to_string(port);
  options.channels = {"orders", "news"};
  options.reconnect = true;
  options.count = 5;  // three messages of the first stream, two of the second
  std::ostringstream out, err;
  EXPECT_EQ(RunSubscribe(options, stop, out, err), kExitOk) << err.str();
  server->Shutdown();

  const std::vector<bridge::v1::SubscribeRequest> requests = service.requests();
  ASSERT_EQ(requests.size(), 2u) << out.str() << err.str();
  EXPECT_EQ(requests[0].channels_size(), 2);
  EXPECT_TRUE(requests[0].resume().empty());
  ASSERT_EQ(requests[1].channels_size(), 1);
  EXPECT_EQ(requests[1].channels(0), "news");
  ASSERT_TRUE(requests[1].resume().contains("orders"));
  EXPECT_EQ(requests[1].resume().at("orders").offset(), 3u);
  EXPECT_EQ(requests[1].resume().at("orders").epoch(), "e1");

  EXPECT_EQ(out.str(),
            "subscribed channel orders\n"
            "subscribed channel news\n"
            "orders #1 offset=2 epoch=e1: m2\n"
            "news #1: m0\n"
            "orders #2 offset=3 epoch=e1: m3\n"
            "subscribed channel orders\n"
            "subscribed channel news\n"
            "gap channel news: bridge_reconnect\n"
            "orders offset=4 epoch=e1 recovered: m4\n"
            "orders #1 offset=5 epoch=e1: m5\n");
}

}  // namespace
}  // namespace bridgectl
