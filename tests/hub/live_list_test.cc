#include "bridge/hub/live_list.h"

#include <memory>
#include <vector>

#include "bridge/hub/sink.h"
#include "gtest/gtest.h"

namespace bridge::hub {
namespace {

class NullSink : public Sink {
 public:
  void OnReady() override {}
};

std::vector<std::shared_ptr<Subscriber>> Make(int n) {
  std::vector<std::shared_ptr<Subscriber>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_shared<Subscriber>(std::make_shared<NullSink>(), SubscriberOptions{}));
  }
  return out;
}

std::vector<Subscriber*> Members(const LiveList& list) {
  std::vector<Subscriber*> out;
  list.ForEach([&](const std::shared_ptr<Subscriber>& s) { out.push_back(s.get()); });
  return out;
}

TEST(LiveListTest, JoinsKeepOrderAcrossChunks) {
  const int n = 3 * static_cast<int>(LiveList::kChunk) + 7;
  auto subs = Make(n);
  auto list = std::make_shared<const LiveList>();
  for (auto& s : subs) list = list->With(s);
  ASSERT_EQ(list->size(), static_cast<size_t>(n));
  const auto members = Members(*list);
  ASSERT_EQ(members.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(members[i], subs[i].get());
  EXPECT_TRUE(list->Contains(subs[n - 1].get()));
}

TEST(LiveListTest, EarlierListsAreUntouched) {
  auto subs = Make(2 * static_cast<int>(LiveList::kChunk));
  auto list = std::make_shared<const LiveList>();
  for (auto& s : subs) list = list->With(s);
  const auto before = list;
  auto fewer = list->Without(subs[5].get());
  ASSERT_NE(fewer, nullptr);
  auto more = fewer->With(Make(1)[0]);
  EXPECT_EQ(before->size(), subs.size());
  EXPECT_TRUE(before->Contains(subs[5].get()));
  EXPECT_FALSE(fewer->Contains(subs[5].get()));
  EXPECT_EQ(fewer->size(), subs.size() - 1);
  EXPECT_EQ(more->size(), subs.size());
}

TEST(LiveListTest, LeavesFromEveryChunkThenRejoins) {
  const int n = 2 * static_cast<int>(LiveList::kChunk) + 1;
  auto subs = Make(n);
  auto list = std::make_shared<const LiveList>()->WithAll(subs);
  ASSERT_EQ(list->size(), static_cast<size_t>(n));
  // Every odd one leaves; the last chunk (one subscriber) empties and goes.
  for (int i = 1; i < n; i += 2) list = list->Without(subs[i].get());
  list = list->Without(subs[n - 1].get());
  EXPECT_EQ(list->Without(subs[1].get()), nullptr);
  std::vector<Subscriber*> expected;
  for (int i = 0; i < n - 1; i += 2) expected.push_back(subs[i].get());
  EXPECT_EQ(Members(*list), expected);
  // Joining again fills the last chunk's room first, then new chunks.
  for (int i = 1; i < n; i += 2) {
    list = list->With(subs[i]);
    expected.push_back(subs[i].get());
  }
  EXPECT_EQ(Members(*list), expected);
  EXPECT_EQ(list->size(), expected.size());
}

TEST(LiveListTest, EmptyList) {
  LiveList empty;
  EXPECT_TRUE(empty.empty());
  auto subs = Make(1);
  EXPECT_FALSE(empty.Contains(subs[0].get()));
  EXPECT_EQ(empty.Without(subs[0].get()), nullptr);
  EXPECT_EQ(empty.WithAll({})->size(), 0u);
}

}  // namespace
}  // namespace bridge::hub
