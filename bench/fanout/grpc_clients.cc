#include "bench/fanout/grpc_clients.h"

#include <chrono>
#include <string_view>

#include "bridge/v1/bridge.pb.h"

namespace bridge::bench {
namespace {

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

// Reads one field: its number and, when length-delimited, its bytes, or when a varint, its
// value (in `number`, if given).
bool ReadField(std::string_view* in, uint64_t* field, std::string_view* value,
               uint64_t* number = nullptr) {
  uint64_t tag = 0, len = 0;
  if (!ReadVarint(in, &tag)) return false;
  *field = tag >> 3;
  if ((tag & 7) == 0) {
    *value = {};
    if (!ReadVarint(in, &len)) return false;
    if (number != nullptr) *number = len;
    return true;
  }
  if ((tag & 7) != 2 || !ReadVarint(in, &len) || len > in->size()) return false;
  *value = in->substr(0, len);
  in->remove_prefix(len);
  return true;
}

}  // namespace

struct GrpcClients::Poller {
  ::grpc::CompletionQueue cq;
  std::thread thread;
};

// One stream's state machine: StartCall -> Write(request) -> WritesDone, and a Read
// loop from StartCall on, until Finish. Each operation's tag is one of its Op members.
class GrpcClients::Stream {
 public:
  enum class OpKind { kStart, kWrite, kWritesDone, kRead, kFinish };
  struct Op {
    Stream* stream;
    OpKind kind;
  };

  Stream(GrpcClients* owner, int index) : owner_(owner), index_(index) {}

  void Begin(::grpc::GenericStub* stub, ::grpc::CompletionQueue* cq) {
    v1::SubscribeRequest request;
    const std::string channel =
        owner_->receiver_->ChannelName(owner_->receiver_->ChannelOf(index_));
    if (owner_->resume_) {
      v1::StreamPosition& from = (*request.mutable_resume())[channel];
      from.set_offset(owner_->resume_offset_);
      from.set_epoch(owner_->resume_epoch_);
    } else {
      request.add_channels(channel);
    }
    std::string bytes = request.SerializeAsString();
    ::grpc::Slice slice(bytes);
    request_ = ::grpc::ByteBuffer(&slice, 1);
    call_ = stub->PrepareCall(
        &context_,
        owner_->batched_ ? "/bridge.v1.Bridge/SubscribeBatched" : "/bridge.v1.Bridge/Subscribe",
        cq);
    call_->StartCall(&start_);
  }
  void Cancel() { context_.TryCancel(); }

  // Handles one completion; false once the stream is over.
  bool On(OpKind kind, bool ok) {
    switch (kind) {
      case OpKind::kStart:
        if (!ok) return Finish();
        call_->Write(request_, &write_);
        call_->Read(&buffer_, &read_);
        ++pending_;
        return true;
      case OpKind::kWrite:
        if (ok) call_->WritesDone(&writes_done_);
        return true;
      case OpKind::kWritesDone:
        return true;
      case OpKind::kRead:
        --pending_;
        if (!ok) return Finish();
        Handle();
        buffer_.Clear();
        call_->Read(&buffer_, &read_);
        ++pending_;
        return true;
      case OpKind::kFinish:
        if (!status_.ok() && status_.error_code() != ::grpc::StatusCode::CANCELLED) {
          owner_->receiver_->OnFailed(index_, status_.error_message());
        } else if (!owner_->stopping_.load()) {
          owner_->receiver_->OnFailed(index_, "stream ended");
        }
        owner_->open_.fetch_sub(1);
        return false;
    }
    return false;
  }

  Op start_{this, OpKind::kStart};
  Op write_{this, OpKind::kWrite};
  Op writes_done_{this, OpKind::kWritesDone};
  Op read_{this, OpKind::kRead};
  Op finish_{this, OpKind::kFinish};

 private:
  bool Finish() {
    call_->Finish(&status_, &finish_);
    return true;
  }

  void Handle() {
    ::grpc::Slice slice;
    if (!buffer_.TrySingleSlice(&slice).ok() && !buffer_.DumpToSingleSlice(&slice).ok()) return;
    std::string_view in(reinterpret_cast<const char*>(slice.begin()), slice.size());
    if (!owner_->batched_) return HandleEvent(in);
    // An EventBatch: each field 1 is one Event.
    uint64_t field = 0;
    std::string_view event;
    while (ReadField(&in, &field, &event)) {
      if (field == 1) HandleEvent(event);
    }
  }

  void HandleEvent(std::string_view in) {
    uint64_t field = 0;
    std::string_view value;
    if (!ReadField(&in, &field, &value)) return;
    Receiver* r = owner_->receiver_;
    switch (field) {
      case 1:  // Subscribed
        r->OnSubscribed(index_);
        break;
      case 2: {  // Message: payload 3, and a durable channel's offset 5 and recovered 7
        std::string_view m = value, v, payload;
        uint64_t f = 0, number = 0, offset = 0;
        bool recovered = false;
        while (ReadField(&m, &f, &v, &number)) {
          if (f == 3) {
            payload = v;
          } else if (f == 5) {
            offset = number;
          } else if (f == 7) {
            recovered = number != 0;
          }
        }
        r->OnMessage(index_, payload, offset, recovered);
        break;
      }
      case 3: {  // Gap: the reason is field 2
        std::string_view g = value, v, reason;
        uint64_t f = 0;
        while (ReadField(&g, &f, &v)) {
          if (f == 2) reason = v;
        }
        r->OnGap(index_, reason);
        break;
      }
    }
  }

  GrpcClients* const owner_;
  const int index_;
  ::grpc::ClientContext context_;
  std::unique_ptr<::grpc::GenericClientAsyncReaderWriter> call_;
  ::grpc::ByteBuffer request_;
  ::grpc::ByteBuffer buffer_;
  ::grpc::Status status_;
  int pending_ = 0;
};

GrpcClients::GrpcClients(Receiver* receiver, std::string target, int connections, int threads,
                         bool batched)
    : receiver_(receiver), target_(std::move(target)), batched_(batched) {
  for (int i = 0; i < connections; ++i) {
    ::grpc::ChannelArguments args;
    // A connection of its own per channel: distinct args and no shared subchannel pool.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("bridge.bench.connection", i);
    args.SetMaxReceiveMessageSize(-1);
    channels_.push_back(
        ::grpc::CreateCustomChannel(target_, ::grpc::InsecureChannelCredentials(), args));
    stubs_.push_back(std::make_unique<::grpc::GenericStub>(channels_.back()));
  }
  for (int i = 0; i < std::max(1, threads); ++i) pollers_.push_back(std::make_unique<Poller>());
}

GrpcClients::~GrpcClients() { Stop(); }

void GrpcClients::Start() {
  open_.store(receiver_->size());
  for (int i = 0; i < receiver_->size(); ++i) {
    streams_.push_back(std::make_unique<Stream>(this, i));
  }
  for (int i = 0; i < receiver_->size(); ++i) {
    streams_[i]->Begin(stubs_[i % stubs_.size()].get(), &pollers_[i % pollers_.size()]->cq);
  }
  for (auto& p : pollers_) {
    Poller* poller = p.get();
    poller->thread = std::thread([this, poller] { Poll(poller); });
  }
}

void GrpcClients::Poll(Poller* poller) {
  void* tag = nullptr;
  bool ok = false;
  while (poller->cq.Next(&tag, &ok)) {
    auto* op = static_cast<Stream::Op*>(tag);
    op->stream->On(op->kind, ok);
  }
}

void GrpcClients::Stop() {
  if (pollers_.empty() || streams_.empty()) return;
  stopping_.store(true);
  for (auto& s : streams_) s->Cancel();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (open_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& p : pollers_) p->cq.Shutdown();
  for (auto& p : pollers_) p->thread.join();
  if (open_.load() == 0) {
    streams_.clear();
  } else {
    for (auto& s : streams_) s.release();  // gRPC may still refer to them: leak, don't crash
    streams_.clear();
  }
  pollers_.clear();
}

}  // namespace bridge::bench
