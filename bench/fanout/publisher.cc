#include "bench/fanout/publisher.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/redis/cluster_slot.h"

namespace bridge::bench {
namespace {

constexpr uint64_t kMaxPipeline = 256;
constexpr uint64_t kBatch = 32;

}  // namespace

Publisher::Publisher(const PublisherOptions& options, Receiver* receiver)
    : options_(options), receiver_(receiver) {}

Publisher::~Publisher() {
  for (Link& link : links_) redisFree(link.ctx);
}

absl::StatusOr<size_t> Publisher::Open(const std::string& host, int port) {
  redisContext* ctx = redisConnect(host.c_str(), port);
  if (ctx == nullptr || ctx->err != 0) {
    const std::string why = ctx != nullptr ? ctx->errstr : "out of memory";
    if (ctx != nullptr) redisFree(ctx);
    return absl::UnavailableError(
        absl::StrCat("publisher: cannot reach Redis at ", host, ":", port, ": ", why));
  }
  links_.push_back(Link{ctx, 0});
  return links_.size() - 1;
}

absl::Status Publisher::Connect() {
  if (!options_.grpc_target.empty()) {
    grpc_ = std::make_unique<GrpcPublisher>(options_.grpc_target);
    return grpc_->Connect(10);
  }
  if (options_.cluster) return ConnectCluster();
  absl::StatusOr<size_t> link = Open(options_.host, options_.port);
  if (!link.ok()) return link.status();
  route_.assign(static_cast<size_t>(options_.channels), *link);
  return absl::OkStatus();
}

absl::Status Publisher::ConnectCluster() {
  absl::StatusOr<size_t> seed = Open(options_.host, options_.port);
  if (!seed.ok()) return seed.status();
  // CLUSTER SLOTS: one entry per slot range, [start, end, [master ip, port, ...], replicas].
  // Kept over CLUSTER SHARDS because Redis 6 answers it too, and the ranges are all we need.
  auto* reply = static_cast<redisReply*>(redisCommand(links_[*seed].ctx, "CLUSTER SLOTS"));
  if (reply == nullptr) return absl::UnavailableError(links_[*seed].ctx->errstr);
  std::unique_ptr<redisReply, decltype(&freeReplyObject)> owned(reply, freeReplyObject);
  if (reply->type != REDIS_REPLY_ARRAY) {
    return absl::FailedPreconditionError(
        absl::StrCat("publisher: CLUSTER SLOTS failed at ", options_.host, ":", options_.port,
                     reply->type == REDIS_REPLY_ERROR ? absl::StrCat(": ", reply->str) : ""));
  }
  std::vector<int> slot_master(redis::kClusterSlots, -1);
  std::map<std::pair<std::string, int>, size_t> master_link;
  // The seed's connection only asked; the masters get links of their own.
  redisFree(links_[*seed].ctx);
  links_.clear();
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* range = reply->element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
    const redisReply* master = range->element[2];
    if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
    std::string host(master->element[0]->str, master->element[0]->len);
    // An empty or "?" endpoint means the node that answered: the seed.
    if (host.empty() || host == "?") host = options_.host;
    const int port = static_cast<int>(master->element[1]->integer);
    auto [it, added] = master_link.emplace(std::make_pair(host, port), 0);
    if (added) {
      absl::StatusOr<size_t> link = Open(host, port);
      if (!link.ok()) return link.status();
      it->second = *link;
    }
    const int start = static_cast<int>(range->element[0]->integer);
    const int end = static_cast<int>(range->element[1]->integer);
    for (int slot = std::max(start, 0); slot <= end && slot < redis::kClusterSlots; ++slot) {
      slot_master[slot] = static_cast<int>(it->second);
    }
  }
  for (int c = 0; c < options_.channels; ++c) {
    const std::string name = receiver_->ChannelName(c);
    const int link = slot_master[redis::KeySlot(name)];
    if (link < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("publisher: no master serves the slot of ", name));
    }
    route_.push_back(static_cast<size_t>(link));
  }
  return absl::OkStatus();
}

absl::Status Publisher::Drain(bool block, uint64_t keep) {
  if (grpc_) {
    grpc_->Collect(block, keep);
    pending_ = grpc_->in_flight();
    return absl::OkStatus();
  }
  for (Link& link : links_) {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(link.ctx, &done) != REDIS_OK) {
        return absl::UnavailableError(link.ctx->errstr);
      }
    }
  }
  std::vector<pollfd> fds;
  std::vector<Link*> polled;
  while (pending_ > 0) {
    // First what the readers already hold, then the sockets.
    bool took = false;
    for (Link& link : links_) {
      while (link.pending > 0) {
        void* reply = nullptr;
        if (redisGetReplyFromReader(link.ctx, &reply) != REDIS_OK) {
          return absl::UnavailableError(link.ctx->errstr);
        }
        if (reply == nullptr) break;
        if (static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR) ++result_.errors;
        freeReplyObject(reply);
        --link.pending;
        --pending_;
        took = true;
      }
    }
    if (took) continue;
    const bool must_wait = block && pending_ > keep;
    fds.clear();
    polled.clear();
    for (Link& link : links_) {
      if (link.pending == 0) continue;
      fds.push_back(pollfd{link.ctx->fd, POLLIN, 0});
      polled.push_back(&link);
    }
    if (poll(fds.data(), fds.size(), must_wait ? 1000 : 0) <= 0) {
      if (must_wait) continue;
      break;
    }
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      if (redisBufferRead(polled[k]->ctx) != REDIS_OK) {
        return absl::UnavailableError(polled[k]->ctx->errstr);
      }
    }
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
    const uint64_t done = options_.fanout > 0 ? receiver_->delivered() / options_.fanout : i;
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
    if (grpc_) {
      // Room for the batch among the calls in flight.
      const uint64_t cap = std::max<uint64_t>(1, options_.grpc_in_flight);
      batch = std::min(batch, cap);
      if (pending_ + batch > cap && !Drain(true, cap - batch).ok()) break;
    }
    for (uint64_t k = 0; k < batch; ++k, ++i) {
      const uint64_t c = i % channels;
      const std::string payload = MakePayload(i / channels + 1, NowNs(), options_.payload_bytes);
      ++pending_;
      if (grpc_) {
        grpc_->Publish(names[c], payload);
        continue;
      }
      Link& link = links_[route_[c]];
      redisAppendCommand(link.ctx, options_.cluster ? "SPUBLISH %b %b" : "PUBLISH %b %b",
                         names[c].data(), names[c].size(), payload.data(), payload.size());
      ++link.pending;
    }
    if (grpc_) {
      grpc_->Collect(false, 0);
      pending_ = grpc_->in_flight();
    } else if (!Drain(pending_ > kMaxPipeline, kMaxPipeline / 2).ok()) {
      break;
    }
  }
  result_.published = i;
  if (!Drain(true, 0).ok()) ++result_.errors;
  if (grpc_) {
    result_.errors += grpc_->errors();
    result_.durable = grpc_->durable();
    result_.top_offset = grpc_->top_offset();
    result_.epoch = grpc_->epoch();
  }
  result_.seconds = static_cast<double>(NowNs() - start) / 1e9;
  return result_;
}

}  // namespace bridge::bench
