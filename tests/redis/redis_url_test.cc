#include "bridge/redis/redis_url.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace bridge::redis {
namespace {

TEST(RedisUrlTest, HostPortAndDefaults) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://cache.local");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_FALSE(url->is_unix());
  EXPECT_EQ(url->host, "cache.local");
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
  EXPECT_TRUE(url->user.empty());
  EXPECT_TRUE(url->password.empty());

  url = RedisUrl::Parse("redis://127.0.0.1:7000/3");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->db, 3);

  url = RedisUrl::Parse("redis://h:1/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->db, 0);
}

TEST(RedisUrlTest, UserAndPassword) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://alice:s3cret@h:6380/1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "s3cret");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 1);
}

TEST(RedisUrlTest, PasswordOnly) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://:pass@h:1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "pass");
}

TEST(RedisUrlTest, PercentDecodesCredentials) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://us%3Aer:p%40ss%2Fw%25rd@h:1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "us:er");
  EXPECT_EQ(url->password, "p@ss/w%rd");
}

TEST(RedisUrlTest, Ipv6Literal) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://[::1]:6390/2");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 6390);
  EXPECT_EQ(url->db, 2);
}

TEST(RedisUrlTest, UnixSockets) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("/var/run/redis.sock");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->is_unix());
  EXPECT_EQ(url->socket_path, "/var/run/redis.sock");
  EXPECT_EQ(url->db, 0);

  url = RedisUrl::Parse("unix:///tmp/r.sock?db=5");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->is_unix());
  EXPECT_EQ(url->socket_path, "/tmp/r.sock");
  EXPECT_EQ(url->db, 5);
}

TEST(RedisUrlTest, RejectsBadUrls) {
  for (const char* bad : {
           "",
           "localhost:6379",
           "http://h:1",
           "rediss://h:1",
           "redis://",
           "redis://:1",
           "redis://h:",
           "redis://h:0",
           "redis://h:65536",
           "redis://h:12ab",
           "redis://h:-1",
           "redis://h:1/x",
           "redis://h:1/-2",
           "redis://h:1?timeout=3",
           "redis://user@h:1",
           "redis://:@h:1",
           "redis://a:b%zz@h:1",
           "redis://a:b%4@h:1",
           "redis://[::1:1",
           "unix://relative.sock",
           "unix:///tmp/r.sock?timeout=1",
           "unix:///tmp/r.sock?db=x",
       }) {
    absl::StatusOr<RedisUrl> url = RedisUrl::Parse(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(RedisUrlTest, ErrorsNeverEchoThePassword) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://:topsecret@h:99999");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(std::string(url.status().message()).find("topsecret"), std::string::npos);
}

TEST(RedisUrlTest, RedactedHidesThePassword) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis://alice:s3cret@h:6380/1");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->Redacted(), "redis://alice:***@h:6380/1");
  url = RedisUrl::Parse("redis://:s3cret@h");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->Redacted(), "redis://:***@h:6379");
  url = RedisUrl::Parse("redis://[::1]:7");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->Redacted(), "redis://[::1]:7");
  url = RedisUrl::Parse("unix:///tmp/r.sock?db=2");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->Redacted(), "unix:///tmp/r.sock?db=2");
}

TEST(RedisUrlTest, SentinelListsTheSentinelsAndNamesTheMaster) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis+sentinel://s1:26380,s2,[::1]:7/mymaster");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->is_sentinel());
  EXPECT_FALSE(url->is_unix());
  ASSERT_EQ(url->nodes.size(), 3u);
  EXPECT_EQ(url->nodes[0], (RedisUrl::Node{"s1", 26380}));
  EXPECT_EQ(url->nodes[1], (RedisUrl::Node{"s2", 26379}));
  EXPECT_EQ(url->nodes[2], (RedisUrl::Node{"::1", 7}));
  EXPECT_EQ(url->master_name, "mymaster");
  EXPECT_EQ(url->db, 0);
  EXPECT_TRUE(url->password.empty());
  EXPECT_TRUE(url->sentinel_password.empty());

  // A plain redis:// URL is no Sentinel one.
  url = RedisUrl::Parse("redis://h:1");
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->is_sentinel());
  EXPECT_TRUE(url->nodes.empty());
}

TEST(RedisUrlTest, SentinelCredentialsAndDatabase) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(
      "redis+sentinel://alice:p%40ss@s1:1,s2:2/my%20master/3"
      "?sentinel_user=watch&sentinel_password=s%26cret");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "p@ss");
  EXPECT_EQ(url->master_name, "my master");
  EXPECT_EQ(url->db, 3);
  EXPECT_EQ(url->sentinel_user, "watch");
  EXPECT_EQ(url->sentinel_password, "s&cret");

  // The master's credentials and db go to the master; the sentinels' to the sentinels.
  const RedisUrl master = url->AtNode(RedisUrl::Node{"10.0.0.5", 6380});
  EXPECT_FALSE(master.is_sentinel());
  EXPECT_EQ(master.host, "10.0.0.5");
  EXPECT_EQ(master.port, 6380);
  EXPECT_EQ(master.user, "alice");
  EXPECT_EQ(master.password, "p@ss");
  EXPECT_EQ(master.db, 3);
  const RedisUrl sentinel = url->SentinelAt(url->nodes[1]);
  EXPECT_FALSE(sentinel.is_sentinel());
  EXPECT_EQ(sentinel.host, "s2");
  EXPECT_EQ(sentinel.port, 2);
  EXPECT_EQ(sentinel.user, "watch");
  EXPECT_EQ(sentinel.password, "s&cret");
  EXPECT_EQ(sentinel.db, 0);

  url = RedisUrl::Parse("REDIS+SENTINEL://:pw@s1/m?sentinel_password=x");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "pw");
  EXPECT_EQ(url->sentinel_user, "");
  EXPECT_EQ(url->sentinel_password, "x");
}

TEST(RedisUrlTest, RejectsBadSentinelUrls) {
  for (const char* bad : {
           "redis+sentinel://",
           "redis+sentinel://s1:26379",
           "redis+sentinel://s1:26379/",
           "redis+sentinel:///mymaster",
           "redis+sentinel://s1,/m",
           "redis+sentinel://,s1/m",
           "redis+sentinel://s1:0/m",
           "redis+sentinel://s1:/m",
           "redis+sentinel://s1:x/m",
           "redis+sentinel://s1/m/x",
           "redis+sentinel://s1/m/-1",
           "redis+sentinel://s1/m?db=1",
           "redis+sentinel://s1/m?sentinel_password=",
           "redis+sentinel://s1/m?sentinel_user=u",
           "redis+sentinel://s1/m?sentinel_password=a%zz",
           "redis+sentinel://s1/m#frag",
           "redis+sentinel://user@s1/m",
           "redis+sentinel://:@s1/m",
           "redis+sentinel://[::1/m",
       }) {
    absl::StatusOr<RedisUrl> url = RedisUrl::Parse(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(RedisUrlTest, SentinelRedactedHidesBothPasswords) {
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse(
      "redis+sentinel://alice:s3cret@s1,s2:26380/mymaster/2?sentinel_user=w&sentinel_password="
      "topsecret");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->Redacted(),
            "redis+sentinel://alice:***@s1:26379,s2:26380/mymaster/2"
            "?sentinel_user=w&sentinel_password=***");
  url = RedisUrl::Parse("redis+sentinel://[::1]/m");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->Redacted(), "redis+sentinel://[::1]:26379/m");

  url = RedisUrl::Parse("redis+sentinel://:topsecret@s1:99999/m?sentinel_password=topsecret2");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(std::string(url.status().message()).find("topsecret"), std::string::npos);
}

TEST(RedisUrlTest, ClusterSeedNodes) {
  absl::StatusOr<RedisUrl> url =
      RedisUrl::Parse("redis+cluster://alice:s%40cret@10.0.0.1:7000,node-b,[::1]:7002");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->is_cluster());
  EXPECT_FALSE(url->is_unix());
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "s@cret");
  ASSERT_EQ(url->nodes.size(), 3u);
  EXPECT_EQ(url->nodes[0], (RedisUrl::Node{"10.0.0.1", 7000}));
  EXPECT_EQ(url->nodes[1], (RedisUrl::Node{"node-b", 6379}));
  EXPECT_EQ(url->nodes[2], (RedisUrl::Node{"::1", 7002}));
  EXPECT_EQ(url->host, "10.0.0.1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->Redacted(), "redis+cluster://alice:***@10.0.0.1:7000,node-b:6379,[::1]:7002");

  url = RedisUrl::Parse("REDIS+CLUSTER://h:1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->nodes.size(), 1u);
  EXPECT_FALSE(RedisUrl::Parse("redis://h:1")->is_cluster());
}

TEST(RedisUrlTest, ClusterMistakesAreNamed) {
  for (const char* bad : {"redis+cluster://", "redis+cluster://h:1,,h:2", "redis+cluster://h:1/0",
                          "redis+cluster://h:0", "redis+cluster://h:1,h:x", "redis+cluster://u@h:1",
                          "redis+cluster://h:1?x=1", "redis+cluster://[::1:7000"}) {
    absl::StatusOr<RedisUrl> url = RedisUrl::Parse(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::StatusOr<RedisUrl> url = RedisUrl::Parse("redis+cluster://:secret@h:1,:2");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().message().find("secret"), std::string::npos);
}

}  // namespace
}  // namespace bridge::redis
