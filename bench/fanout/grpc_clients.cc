#include "bench/fanout/grpc_clients.h"

#include <grpcpp/support/client_callback.h>

#include <string_view>

#include "absl/time/time.h"
#include "bridge/v1/bridge.grpc.pb.h"

namespace bridge::bench {
namespace {

const ::grpc::internal::RpcMethod kSubscribe("/bridge.v1.Bridge/Subscribe",
                                             ::grpc::internal::RpcMethod::SERVER_STREAMING);

bool ReadVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80u) == 0) return true;
  }
  return false;
}

// Reads one length-delimited field; false at the end or on anything else.
bool ReadField(std::string_view* in, uint64_t* field, std::string_view* value) {
  uint64_t tag = 0, len = 0;
  if (!ReadVarint(in, &tag)) return false;
  *field = tag >> 3;
  if ((tag & 7) == 0) {  // varint (seq): skip it
    *value = {};
    return ReadVarint(in, &len);
  }
  if ((tag & 7) != 2 || !ReadVarint(in, &len) || len > in->size()) return false;
  *value = in->substr(0, len);
  in->remove_prefix(len);
  return true;
}

}  // namespace

class GrpcClients::Stream : public ::grpc::ClientReadReactor<::grpc::ByteBuffer> {
 public:
  Stream(GrpcClients* owner, int index) : owner_(owner), index_(index) {}

  void Begin(::grpc::Channel* channel) {
    request_.add_channels(owner_->receiver_->ChannelName(owner_->receiver_->ChannelOf(index_)));
    ::grpc::internal::ClientCallbackReaderFactory<::grpc::ByteBuffer>::Create(
        channel, kSubscribe, &context_, &request_, this);
    StartRead(&buffer_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status.
    Handle();
    buffer_.Clear();
    StartRead(&buffer_);
  }

  void OnDone(const ::grpc::Status& status) override {
    if (!status.ok() && status.error_code() != ::grpc::StatusCode::CANCELLED) {
      owner_->receiver_->OnFailed(index_, status.error_message());
    } else if (!cancelled_by_us()) {
      owner_->receiver_->OnFailed(index_, "stream ended");
    }
    owner_->OnStreamDone();
  }

 private:
  bool cancelled_by_us() const { return owner_->stopping_.load(); }

  void Handle() {
    ::grpc::Slice slice;
    if (!buffer_.TrySingleSlice(&slice).ok() && !buffer_.DumpToSingleSlice(&slice).ok()) return;
    std::string_view in(reinterpret_cast<const char*>(slice.begin()), slice.size());
    uint64_t field = 0;
    std::string_view value;
    if (!ReadField(&in, &field, &value)) return;
    Receiver* r = owner_->receiver_;
    switch (field) {
      case 1:  // Subscribed
        r->OnSubscribed(index_);
        break;
      case 2: {  // Message: pick out the payload (field 3)
        std::string_view m = value, v;
        uint64_t f = 0;
        while (ReadField(&m, &f, &v)) {
          if (f == 3) {
            r->OnMessage(index_, v);
            break;
          }
        }
        break;
      }
      case 3:  // Gap
        r->OnGap(index_);
        break;
    }
  }

  GrpcClients* const owner_;
  const int index_;
  ::grpc::ClientContext context_;
  v1::SubscribeRequest request_;
  ::grpc::ByteBuffer buffer_;
};

GrpcClients::GrpcClients(Receiver* receiver, std::string target, int connections)
    : receiver_(receiver), target_(std::move(target)) {
  for (int i = 0; i < connections; ++i) {
    ::grpc::ChannelArguments args;
    // A channel of its own per connection: distinct args and no shared subchannel pool.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("bridge.bench.connection", i);
    args.SetMaxReceiveMessageSize(-1);
    channels_.push_back(
        ::grpc::CreateCustomChannel(target_, ::grpc::InsecureChannelCredentials(), args));
  }
}

GrpcClients::~GrpcClients() { Stop(); }

void GrpcClients::Start() {
  {
    absl::MutexLock lock(&mu_);
    open_ = receiver_->size();
  }
  for (int i = 0; i < receiver_->size(); ++i) {
    streams_.push_back(std::make_unique<Stream>(this, i));
  }
  for (int i = 0; i < receiver_->size(); ++i) {
    streams_[i]->Begin(channels_[i % channels_.size()].get());
  }
}

void GrpcClients::Stop() {
  if (streams_.empty()) return;
  stopping_.store(true);
  for (auto& s : streams_) s->Cancel();
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](int* open) { return *open == 0; }, &open_),
                       absl::Seconds(30));
  if (open_ == 0) {
    streams_.clear();
  } else {
    // Streams gRPC has not finished with must outlive it: leak them rather than crash.
    for (auto& s : streams_) s.release();
    streams_.clear();
  }
}

void GrpcClients::OnStreamDone() {
  absl::MutexLock lock(&mu_);
  --open_;
}

}  // namespace bridge::bench
