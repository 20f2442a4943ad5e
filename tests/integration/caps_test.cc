// Process-wide limits, end to end: a real redis-server, the real App with both front ends
// on port 0, and real gRPC and WebSocket clients.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bridge/app/app.h"
#include "tests/integration/grpc_client.h"
#include "tests/support/redis_server.h"
#include "tests/ws/ws_test_client.h"

namespace bridge::testing {
namespace {

std::unique_ptr<App> StartApp(const RedisServer& redis, AppOptions options) {
  options.redis.url = redis.url();
  options.grpc_addr = "127.0.0.1:0";
  options.shutdown_grace = absl::Seconds(2);
  auto app = std::make_unique<App>(options);
  const absl::Status st = app->Start();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(WaitFor([&] { return app->hub().Healthy(); }));
  return app;
}

// --max_topics: once the server holds that many channels plus patterns, a request that
// would add one is refused (gRPC RESOURCE_EXHAUSTED, WebSocket too_many_topics) and never
// reaches Redis; topics already held may still be joined.
TEST(TopicCapTest, PastMaxTopicsNewTopicsAreRefusedOnBothFrontEnds) {
  RedisServer redis;
  AppOptions options;
  options.hub.max_topics = 2;
  options.ws.address = "127.0.0.1:0";
  options.ws.threads = 1;
  std::unique_ptr<App> app = StartApp(redis, options);
  ASSERT_GT(app->ws_port(), 0);
  auto channel = Connect(app->grpc_port());

  StreamReader holder(channel, Channels({"a"}, {"news.*"}));
  ASSERT_TRUE(holder.WaitSubscribed(2));

  StreamReader refused(channel, Channels({"a", "b"}));
  const ::grpc::Status st = refused.WaitForEnd();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "too many topics on this server"))
      << st.error_message();

  auto ws = ws::testing::WsTestClient::Connect(app->ws_port());
  ASSERT_TRUE(ws.ok()) << ws.status();
  ASSERT_TRUE((*ws)->SendJson({{"op", "subscribe"}, {"channels", {"b"}}}).ok());
  auto error = (*ws)->ReadOp("error");
  ASSERT_TRUE(error.ok()) << error.status();
  EXPECT_EQ((*error)["code"], "too_many_topics") << error->dump();
  EXPECT_EQ(redis.NumSub("b"), 0);

  // A topic the server holds already costs nothing new.
  ASSERT_TRUE((*ws)->SendJson({{"op", "subscribe"}, {"channels", {"a"}}}).ok());
  auto subscribed = (*ws)->ReadOp("subscribed");
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ((*subscribed)["channel"], "a");
  EXPECT_EQ(app->hub().Stats().topics(), 2u);
}

// One ServerReflectionInfo call asking for the list of services: OK with the services'
// names, or the status that ended it.
::grpc::Status ListServices(const std::shared_ptr<::grpc::Channel>& channel, std::string* out) {
  ::grpc::GenericStub generic(channel);
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  const std::string list_services("\x3a\x00", 2);  // ServerReflectionRequest{list_services: ""}
  ::grpc::Slice slice(list_services);
  ::grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  call->WritesDone(reinterpret_cast<void*>(3));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  ::grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  if (ok) {
    std::vector<::grpc::Slice> slices;
    EXPECT_TRUE(response.Dump(&slices).ok());
    for (const ::grpc::Slice& s : slices) out->append(s.begin(), s.end());
    call->Read(&response, reinterpret_cast<void*>(5));  // the end of the stream
    EXPECT_TRUE(cq.Next(&tag, &ok));
  }
  ::grpc::Status st;
  call->Finish(&st, reinterpret_cast<void*>(6));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return st;
}

// --grpc_reflection=false: the reflection service is absent (UNIMPLEMENTED), while a
// server with the default serves it, naming bridge.v1.Bridge.
TEST(ReflectionTest, OffByOptionOnByDefault) {
  RedisServer redis;
  AppOptions off;
  off.grpc_reflection = false;
  std::unique_ptr<App> without = StartApp(redis, off);
  std::unique_ptr<App> with = StartApp(redis, AppOptions{});

  std::string listed;
  ::grpc::Status st = ListServices(Connect(with->grpc_port()), &listed);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(absl::StrContains(listed, "bridge.v1.Bridge")) << listed;

  listed.clear();
  st = ListServices(Connect(without->grpc_port()), &listed);
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::UNIMPLEMENTED) << st.error_message();
  EXPECT_EQ(listed, "");
}

// The flags themselves, on the real binary: BRIDGE_MAX_TOPICS from the environment and
// --grpc_reflection=false on the command line.
TEST(CapsFlagsTest, TheBinaryTakesMaxTopicsAndGrpcReflection) {
  RedisServer redis;
  const int grpc_port = FreePort();
  const std::string grpc_addr = absl::StrCat("--grpc_addr=127.0.0.1:", grpc_port);
  const std::string redis_flag = "--redis=" + redis.url();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("BRIDGE_MAX_TOPICS", "1", 1);
    std::string bin = BRIDGE_BINARY;
    std::vector<std::string> args = {bin, grpc_addr, redis_flag,
                                     "--ws_addr=", "--grpc_reflection=false"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  auto channel = Connect(grpc_port);
  auto stub = v1::Bridge::NewStub(channel);
  auto publish = [&] {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    v1::PublishRequest request;
    request.set_channel("warmup");
    v1::PublishResponse response;
    return stub->Publish(&ctx, request, &response).ok();
  };
  EXPECT_TRUE(WaitFor(publish));

  StreamReader holder(channel, Channels({"a"}));
  EXPECT_TRUE(holder.WaitSubscribed(1));
  StreamReader refused(channel, Channels({"b"}));
  const ::grpc::Status st = refused.WaitForEnd();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "the limit is 1")) << st.error_message();

  std::string listed;
  EXPECT_EQ(ListServices(channel, &listed).error_code(), ::grpc::StatusCode::UNIMPLEMENTED);

  holder.Cancel();
  ::kill(pid, SIGTERM);
  int status = 0;
  const bool exited = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(exited);
}

}  // namespace
}  // namespace bridge::testing
