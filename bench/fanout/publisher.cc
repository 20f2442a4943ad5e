#include "bench/fanout/publisher.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace bridge::bench {
namespace {

constexpr uint64_t kMaxPipeline = 256;
constexpr uint64_t kBatch = 32;

}  // namespace

Publisher::Publisher(const PublisherOptions& options, Receiver* receiver)
    : options_(options), receiver_(receiver) {}

Publisher::~Publisher() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

absl::Status Publisher::Connect() {
  ctx_ = redisConnect(options_.host.c_str(), options_.port);
  if (ctx_ == nullptr || ctx_->err != 0) {
    return absl::UnavailableError(std::string("publisher: cannot reach Redis: ") +
                                  (ctx_ != nullptr ? ctx_->errstr : "out of memory"));
  }
  return absl::OkStatus();
}

absl::Status Publisher::Drain(bool block, uint64_t keep) {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) return absl::UnavailableError(ctx_->errstr);
  }
  while (pending_ > 0) {
    void* reply = nullptr;
    if (redisGetReplyFromReader(ctx_, &reply) != REDIS_OK) {
      return absl::UnavailableError(ctx_->errstr);
    }
    if (reply != nullptr) {
      if (static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR) ++result_.errors;
      freeReplyObject(reply);
      --pending_;
      continue;
    }
    const bool must_wait = block && pending_ > keep;
    pollfd pfd{ctx_->fd, POLLIN, 0};
    if (poll(&pfd, 1, must_wait ? 1000 : 0) <= 0) {
      if (must_wait) continue;
      break;
    }
    if (redisBufferRead(ctx_) != REDIS_OK) return absl::UnavailableError(ctx_->errstr);
  }
  return absl::OkStatus();
}

PublisherResult Publisher::Run() {
  const uint64_t m = options_.messages;
  const uint64_t channels = static_cast<uint64_t>(options_.channels);
  std::vector<std::string> names;
  for (uint64_t c = 0; c < channels; ++c)
    names.push_back(receiver_->ChannelName(static_cast<int>(c)));
  const uint64_t start = NowNs();
  const double ns_per_message = options_.rate > 0 ? 1e9 / options_.rate : 0;
  uint64_t last_progress = start;
  uint64_t last_delivered = 0;
  uint64_t i = 0;
  const uint64_t stop_at = options_.duration_seconds > 0
                               ? start + static_cast<uint64_t>(options_.duration_seconds * 1e9)
                               : UINT64_MAX;
  while (i < m && NowNs() < stop_at) {
    // The window: messages published minus messages delivered to every subscriber.
    const uint64_t done = receiver_->delivered() / options_.fanout;
    const uint64_t in_flight = i > done ? i - done : 0;
    uint64_t room = options_.window > in_flight ? options_.window - in_flight : 0;
    if (room == 0) {
      if (!Drain(false, 0).ok()) break;
      const uint64_t now = NowNs();
      const uint64_t delivered = receiver_->delivered();
      if (delivered != last_delivered) {
        last_delivered = delivered;
        last_progress = now;
      } else if (static_cast<double>(now - last_progress) > options_.stall_seconds * 1e9) {
        ++result_.stalls;  // Lost deliveries never arrive: stop waiting for them.
        last_progress = now;
        room = 1;
      }
      if (room == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        continue;
      }
    }
    uint64_t batch = std::min({room, kBatch, m - i});
    if (ns_per_message > 0) {
      const uint64_t due = start + static_cast<uint64_t>(static_cast<double>(i) * ns_per_message);
      const uint64_t now = NowNs();
      if (now < due) {
        if (!Drain(false, 0).ok()) break;
        const uint64_t after = NowNs();
        if (due > after && due - after > 50000) {
          std::this_thread::sleep_for(std::chrono::nanoseconds(due - after - 20000));
        }
        continue;
      }
      // Only what is due now goes out.
      const uint64_t due_count =
          static_cast<uint64_t>(static_cast<double>(now - start) / ns_per_message) + 1;
      batch = std::min(batch, due_count > i ? due_count - i : 1);
    }
    for (uint64_t k = 0; k < batch; ++k, ++i) {
      const uint64_t c = i % channels;
      const std::string payload = MakePayload(i / channels + 1, NowNs(), options_.payload_bytes);
      redisAppendCommand(ctx_, "PUBLISH %b %b", names[c].data(), names[c].size(), payload.data(),
                         payload.size());
      ++pending_;
    }
    if (!Drain(pending_ > kMaxPipeline, kMaxPipeline / 2).ok()) break;
  }
  result_.published = i;
  if (!Drain(true, 0).ok()) ++result_.errors;
  result_.seconds = static_cast<double>(NowNs() - start) / 1e9;
  return result_;
}

}  // namespace bridge::bench
