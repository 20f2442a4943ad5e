#include "bridge/redis/sentinel_resolver.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bridge/common/log.h"
#include "bridge/redis/reconnector.h"

namespace bridge::redis {
namespace {

// Debian's abseil has its own string_view type, which its StrSplit and SimpleAtoi take.
absl::string_view ReplyText(const redisReply* reply) {
  return reply->str == nullptr ? absl::string_view() : absl::string_view(reply->str, reply->len);
}

bool IsString(const redisReply* reply) {
  return reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS;
}

std::optional<int> ParsePort(absl::string_view text) {
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port < 1 || port > 65535) return std::nullopt;
  return port;
}

std::string NodeName(const RedisUrl::Node& node) {
  return node.host.find(':') != std::string::npos ? absl::StrCat("[", node.host, "]:", node.port)
                                                  : absl::StrCat(node.host, ":", node.port);
}

constexpr char kSwitchMaster[] = "+switch-master";

}  // namespace

SentinelResolver::SentinelResolver(Strand strand, RedisUrl url, const RedisUpstreamOptions& options)
    : strand_(std::move(strand)),
      url_(std::move(url)),
      options_(options),
      query_timer_(strand_),
      refresh_timer_(strand_) {}

void SentinelResolver::Start() {
  if (stopped_) return;
  BRIDGE_LOG(Info, "redis: asking %d sentinel(s) where master '%s' is, every %s",
             static_cast<int>(url_.nodes.size()), url_.master_name,
             absl::FormatDuration(options_.sentinel_refresh_interval));
  DoQuery();
  DoScheduleRefresh();
}

void SentinelResolver::Stop() {
  if (stopped_) return;
  stopped_ = true;
  watchers_.clear();
  query_timer_.cancel();
  refresh_timer_.cancel();
  // Closing runs the pending callbacks with a null reply, which free their QueryCall.
  if (query_connection_ != nullptr) {
    query_connection_->Close();
    query_connection_.reset();
  }
  if (events_connection_ != nullptr) {
    events_connection_->Close();
    events_connection_.reset();
  }
}

absl::StatusOr<RedisUrl> SentinelResolver::Master() {
  if (!master_.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("no sentinel has named master '", url_.master_name, "' yet"));
  }
  return url_.AtNode(*master_);
}

void SentinelResolver::MasterFailed(const RedisUrl& master, const absl::Status& why) {
  if (stopped_) return;
  BRIDGE_LOG(Debug, "redis: master candidate %s:%d failed (%s); asking the sentinels", master.host,
             master.port, why.message());
  DoQuery();
}

void SentinelResolver::Watch(std::weak_ptr<Reconnector> reconnector) {
  if (stopped_) return;
  watchers_.push_back(std::move(reconnector));
}

std::string SentinelResolver::master_address() const {
  absl::MutexLock lock(&address_mu_);
  return address_;
}

std::string SentinelResolver::SentinelName(size_t index) const {
  return NodeName(url_.nodes[index]);
}

RedisConnectionOptions SentinelResolver::ConnectionOptions() const {
  return RedisConnectionOptions{.connect_timeout = options_.connect_timeout,
                                .tcp_keepalive = options_.tcp_keepalive};
}

void SentinelResolver::DoQuery() {
  if (stopped_) return;
  if (round_active_) {
    round_again_ = true;
    return;
  }
  round_active_ = true;
  ++round_;
  round_asked_ = 0;
  round_error_ = absl::OkStatus();
  DoAsk();
}

void SentinelResolver::DoAsk() {
  if (query_connection_ != nullptr && query_index_ == next_ &&
      query_connection_->context() != nullptr) {
    return DoSend();
  }
  if (query_connection_ != nullptr) {
    query_connection_->Close();
    query_connection_.reset();
  }
  query_index_ = next_;
  query_connection_ = std::make_shared<RedisConnection>(
      strand_, url_.SentinelAt(url_.nodes[query_index_]), ConnectionOptions());
  // A closed connection reports nothing, so whatever reports comes from the current one.
  query_connection_->Open(
      [self = shared_from_this()] {
        if (self->round_active_) self->DoSend();
      },
      [self = shared_from_this()](absl::Status status) { self->OnQueryConnectionClosed(status); });
}

void SentinelResolver::DoSend() {
  redisAsyncContext* context = query_connection_->context();
  auto* call = new QueryCall{this, round_};
  if (context == nullptr ||
      redisAsyncCommand(context, &SentinelResolver::OnQueryReply, call,
                        "SENTINEL GET-MASTER-ADDR-BY-NAME %b", url_.master_name.data(),
                        url_.master_name.size()) != REDIS_OK) {
    delete call;
    return SentinelFailed(absl::UnavailableError("cannot send the question"));
  }
  // A sentinel that stops answering must not hold the round: the next one is asked.
  query_timer_.expires_after(absl::ToChronoNanoseconds(options_.connect_timeout));
  query_timer_.async_wait(boost::asio::bind_executor(
      strand_, [self = shared_from_this(), round = round_](const boost::system::error_code& ec) {
        self->OnQueryTimeout(round, ec);
      }));
}

void SentinelResolver::OnQueryReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<QueryCall> call(static_cast<QueryCall*>(privdata));
  // A null reply: the context is being freed; its close reports.
  if (reply == nullptr) return;
  call->resolver->OnQueryReplied(call->round, static_cast<redisReply*>(reply));
}

void SentinelResolver::OnQueryReplied(uint64_t round, const redisReply* reply) {
  if (stopped_ || !round_active_ || round != round_) return;
  query_timer_.cancel();
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && IsString(reply->element[0]) &&
      IsString(reply->element[1])) {
    const std::optional<int> port = ParsePort(ReplyText(reply->element[1]));
    if (port.has_value() && reply->element[0]->len > 0) {
      const RedisUrl::Node master{std::string(ReplyText(reply->element[0])), *port};
      const std::string source = absl::StrCat("sentinel ", SentinelName(query_index_));
      next_ = query_index_;
      EndRound(/*answered=*/true);
      SetMaster(master, source);
      if (!stopped_) DoOpenEvents();
      return;
    }
  }
  if (reply->type == REDIS_REPLY_NIL) {
    return SentinelFailed(
        absl::NotFoundError(absl::StrCat("it monitors no master named '", url_.master_name, "'")));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return SentinelFailed(absl::FailedPreconditionError(std::string(ReplyText(reply))));
  }
  SentinelFailed(absl::InternalError("unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME"));
}

void SentinelResolver::OnQueryTimeout(uint64_t round, const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || stopped_ || !round_active_ ||
      round != round_) {
    return;
  }
  if (ec) return Fail(ec, "sentinel question timer");
  SentinelFailed(absl::DeadlineExceededError(
      absl::StrCat("no answer within ", absl::FormatDuration(options_.connect_timeout))));
}

void SentinelResolver::OnQueryConnectionClosed(const absl::Status& status) {
  if (stopped_) return;
  query_connection_->Close();
  query_connection_.reset();
  // Between rounds a closed connection only means the next question opens a new one.
  if (round_active_) SentinelFailed(status);
}

void SentinelResolver::SentinelFailed(const absl::Status& why) {
  query_timer_.cancel();
  // The next sentinel gets a fresh connection; this one may be the trouble.
  if (query_connection_ != nullptr) {
    query_connection_->Close();
    query_connection_.reset();
  }
  BRIDGE_LOG(Debug, "redis: sentinel %s did not say where master '%s' is: %s", SentinelName(next_),
             url_.master_name, why.ToString());
  round_error_ =
      absl::Status(why.code(), absl::StrCat("sentinel ", SentinelName(next_), ": ", why.message()));
  next_ = (next_ + 1) % url_.nodes.size();
  if (++round_asked_ < url_.nodes.size()) return DoAsk();
  if (!unanswered_) {
    unanswered_ = true;
    BRIDGE_LOG(Warning,
               "redis: no sentinel said where master '%s' is (last: %s); asking again in %s",
               url_.master_name, round_error_.message(),
               absl::FormatDuration(options_.sentinel_refresh_interval));
  }
  EndRound(/*answered=*/false);
}

void SentinelResolver::EndRound(bool answered) {
  round_active_ = false;
  ++round_;
  if (answered && unanswered_) {
    unanswered_ = false;
    BRIDGE_LOG(Info, "redis: sentinel %s answers again", SentinelName(next_));
  }
  // A failure reported during a round that answered may concern the answer it got: ask
  // once more. After a round that got no answer, the refresh timer asks next, so that
  // failing reconnects cannot make the questions loop.
  if (round_again_) {
    round_again_ = false;
    if (answered) DoQuery();
  }
}

void SentinelResolver::SetMaster(const RedisUrl::Node& master, const std::string& source) {
  if (master_.has_value() && *master_ == master) return;
  if (master_.has_value()) {
    BRIDGE_LOG(Warning, "redis: master '%s' moved from %s to %s (%s); moving both connections",
               url_.master_name, NodeName(*master_), NodeName(master), source);
  } else {
    BRIDGE_LOG(Info, "redis: master '%s' is %s (%s)", url_.master_name, NodeName(master), source);
  }
  master_ = master;
  {
    absl::MutexLock lock(&address_mu_);
    address_ = NodeName(master);
  }
  // A copy: a reconnector told to move may report a failure, which starts a question but
  // never adds a watcher.
  std::vector<std::shared_ptr<Reconnector>> live;
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (std::shared_ptr<Reconnector> r = it->lock()) {
      live.push_back(std::move(r));
      ++it;
    } else {
      it = watchers_.erase(it);
    }
  }
  for (const std::shared_ptr<Reconnector>& r : live) r->Retarget();
}

void SentinelResolver::DoOpenEvents() {
  if (!options_.sentinel_events || events_connection_ != nullptr || stopped_) return;
  // A sentinel that takes the connection but refuses the subscription (an ACL) closes it
  // at once: reopen at most once per refresh interval rather than in a loop.
  const absl::Time now = absl::Now();
  if (now - events_opened_at_ < options_.sentinel_refresh_interval) return;
  events_opened_at_ = now;
  events_index_ = next_;
  events_connection_ = std::make_shared<RedisConnection>(
      strand_, url_.SentinelAt(url_.nodes[events_index_]), ConnectionOptions());
  events_connection_->Open(
      [self = shared_from_this()] { self->OnEventsReady(); },
      [self = shared_from_this()](absl::Status status) { self->OnEventsClosed(status); });
}

void SentinelResolver::OnEventsReady() {
  if (stopped_ || events_connection_ == nullptr) return;
  redisAsyncContext* context = events_connection_->context();
  // One callback for the subscription's confirmation and every message: hiredis keeps it
  // per channel. `this` outlives the context, which Stop closes.
  if (context == nullptr || redisAsyncCommand(context, &SentinelResolver::OnEvent, this,
                                              "SUBSCRIBE %s", kSwitchMaster) != REDIS_OK) {
    BRIDGE_LOG(Debug, "redis: cannot subscribe to %s on sentinel %s", kSwitchMaster,
               SentinelName(events_index_));
    return;
  }
  BRIDGE_LOG(Debug, "redis: following %s on sentinel %s", kSwitchMaster,
             SentinelName(events_index_));
}

void SentinelResolver::OnEventsClosed(const absl::Status& status) {
  if (stopped_) return;
  events_connection_->Close();
  events_connection_.reset();
  BRIDGE_LOG(Info, "redis: lost the event connection to sentinel %s (%s)",
             SentinelName(events_index_), status.message());
  // The sentinel may be gone with the master: ask (another) one now. A round that
  // answers opens the event connection again, at most once per refresh interval.
  DoQuery();
}

void SentinelResolver::OnEvent(redisAsyncContext* context, void* reply, void* privdata) {
  if (reply == nullptr) return;
  static_cast<SentinelResolver*>(privdata)->OnEventReceived(context,
                                                            static_cast<redisReply*>(reply));
}

void SentinelResolver::OnEventReceived(redisAsyncContext* context, const redisReply* reply) {
  if (stopped_ || events_connection_ == nullptr || events_connection_->context() != context) {
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 || !IsString(reply->element[0]) ||
      ReplyText(reply->element[0]) != "message" || !IsString(reply->element[2])) {
    return;
  }
  // "<master name> <old ip> <old port> <new ip> <new port>"
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(reply->element[2]->str, reply->element[2]->len), ' ');
  if (parts.size() != 5 || parts[0] != url_.master_name) return;
  const std::optional<int> port = ParsePort(parts[4]);
  if (!port.has_value() || parts[3].empty()) {
    BRIDGE_LOG(Warning, "redis: cannot read %s from sentinel %s", kSwitchMaster,
               SentinelName(events_index_));
    return;
  }
  SetMaster(RedisUrl::Node{std::string(parts[3]), *port},
            absl::StrCat(kSwitchMaster, " from sentinel ", SentinelName(events_index_)));
}

void SentinelResolver::DoScheduleRefresh() {
  refresh_timer_.expires_after(absl::ToChronoNanoseconds(options_.sentinel_refresh_interval));
  refresh_timer_.async_wait(boost::asio::bind_executor(
      strand_,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnRefresh(ec); }));
}

void SentinelResolver::OnRefresh(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || stopped_) return;
  if (ec) return Fail(ec, "sentinel refresh timer");
  DoQuery();
  DoScheduleRefresh();
}

void SentinelResolver::Fail(const boost::system::error_code& ec, const char* what) {
  if (ec == boost::asio::error::operation_aborted) return;
  BRIDGE_LOG(Error, "redis: %s failed: %s", what, ec.message());
}

}  // namespace bridge::redis
