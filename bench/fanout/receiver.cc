#include "bench/fanout/receiver.h"

#include <charconv>
#include <cstdio>

namespace bridge::bench {

std::string MakePayload(uint64_t seq, uint64_t send_ns, size_t size) {
  char head[64];
  const int n =
      std::snprintf(head, sizeof head, "S%lluT%llu|", static_cast<unsigned long long>(seq),
                    static_cast<unsigned long long>(send_ns));
  std::string p(head, static_cast<size_t>(n));
  if (p.size() < size) p.append(size - p.size(), 'x');
  return p;
}

bool ParsePayload(std::string_view p, uint64_t* seq, uint64_t* send_ns) {
  if (p.size() < 4 || p[0] != 'S') return false;
  const char* end = p.data() + p.size();
  auto r = std::from_chars(p.data() + 1, end, *seq);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != 'T') return false;
  r = std::from_chars(r.ptr + 1, end, *send_ns);
  return r.ec == std::errc() && r.ptr != end && *r.ptr == '|';
}

Receiver::Receiver(int subscribers, int channels) : subs_(subscribers), channels_(channels) {
  for (int i = 0; i < subscribers; ++i) subs_[i].channel = i % channels;
}

std::string Receiver::ChannelName(int channel) const {
  return prefix_ + "." + std::to_string(channel);
}

void Receiver::OnSubscribed(int i) {
  Subscriber& s = subs_[i];
  if (s.live) return;
  s.live = true;
  s.subscribed_ns = NowNs();
  live_.fetch_add(1, std::memory_order_release);
}

void Receiver::OnMessage(int i, std::string_view payload, uint64_t offset, bool recovered) {
  const uint64_t now = NowNs();
  uint64_t seq = 0, sent = 0;
  if (!ParsePayload(payload, &seq, &sent)) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Subscriber& s = subs_[i];
  ++s.received;
  const uint64_t order = offset > 0 ? offset : seq;
  if (order <= s.last_seq) {
    ++s.reordered;
  } else {
    s.last_seq = order;
  }
  if (offset > 0) {
    durable_.fetch_add(1, std::memory_order_relaxed);
    if (s.first_offset == 0) s.first_offset = offset;
    if (recovered) ++s.recovered;
    if (catch_up_offset_ > 0 && offset >= catch_up_offset_ && s.caught_up_ns == 0) {
      s.caught_up_ns = now;
      caught_up_.fetch_add(1, std::memory_order_release);
    }
  }
  if (!recovered) latency_.Record(now > sent ? now - sent : 0);
  last_delivery_ns_.store(now, std::memory_order_relaxed);
  delivered_.fetch_add(1, std::memory_order_release);
}

void Receiver::ResetCounts() {
  for (auto& s : subs_) {
    s.received = s.last_seq = s.reordered = s.gaps = 0;
    s.first_offset = s.recovered = s.caught_up_ns = 0;
  }
  durable_.store(0);
  caught_up_.store(0);
  {
    std::lock_guard<std::mutex> lock(gap_mu_);
    gap_reasons_.clear();
  }
  delivered_.store(0);
  last_delivery_ns_.store(0);
  malformed_.store(0);
  latency_.Reset();
}

void Receiver::OnGap(int i, std::string_view reason) {
  ++subs_[i].gaps;
  if (reason.empty()) return;
  std::lock_guard<std::mutex> lock(gap_mu_);
  ++gap_reasons_[std::string(reason)];
}

std::map<std::string, uint64_t> Receiver::gap_reasons() const {
  std::lock_guard<std::mutex> lock(gap_mu_);
  return gap_reasons_;
}

void Receiver::OnFailed(int i, std::string_view why) {
  Subscriber& s = subs_[i];
  if (s.failed) return;
  s.failed = true;
  failed_.fetch_add(1, std::memory_order_release);
  if (!reported_failure_.exchange(true)) {
    std::fprintf(stderr, "fanout_bench: subscriber %d failed: %.*s (further failures counted)\n", i,
                 static_cast<int>(why.size()), why.data());
  }
}

}  // namespace bridge::bench
