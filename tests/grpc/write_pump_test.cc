#include "bridge/grpc/write_pump.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace bridge::grpc_frontend {
namespace {

// Counts its WriteNext calls and the threads they came from.
class CountingWriter : public WritePump::Writer {
 public:
  void WriteNext() override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    thread_ = std::this_thread::get_id();
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::thread::id thread() const {
    absl::MutexLock lock(&mu_);
    return thread_;
  }
  bool AwaitCalls(int n) const {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }

 private:
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread::id thread_ ABSL_GUARDED_BY(mu_);
};

TEST(WritePumpTest, EveryListingIsOneCallOnThePumpsThread) {
  WritePump pump;
  auto a = std::make_shared<CountingWriter>();
  auto b = std::make_shared<CountingWriter>();
  pump.Add(a);
  pump.Add(b);
  ASSERT_TRUE(a->AwaitCalls(1));
  ASSERT_TRUE(b->AwaitCalls(1));
  EXPECT_NE(a->thread(), std::this_thread::get_id());
  EXPECT_EQ(a->thread(), b->thread());
  // Listed again once served: called again.
  pump.Add(a);
  ASSERT_TRUE(a->AwaitCalls(2));
  EXPECT_EQ(b->calls(), 1);
}

TEST(WritePumpTest, ManyThreadsListingAtOnceLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::shared_ptr<CountingWriter>> writers;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    writers.push_back(std::make_shared<CountingWriter>());
  }
  {
    WritePump pump;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) pump.Add(writers[t * kPerThread + i]);
      });
    }
    for (auto& t : threads) t.join();
    // The destructor serves whatever is still listed before it joins.
  }
  for (const auto& w : writers) ASSERT_EQ(w->calls(), 1);
}

TEST(WritePumpTest, ReleasesItsReferenceAfterTheCall) {
  auto w = std::make_shared<CountingWriter>();
  WritePump pump;
  pump.Add(w);
  ASSERT_TRUE(w->AwaitCalls(1));
  // The pump drops its reference right after the round; wait for that with a deadline.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (w.use_count() > 1 && absl::Now() < deadline) std::this_thread::yield();
  EXPECT_EQ(w.use_count(), 1);
}

}  // namespace
}  // namespace bridge::grpc_frontend
