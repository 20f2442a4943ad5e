// The gRPC encodings of hub events: an EventBatch made of the shared elements' slices is
// what protobuf parses as one, and it refers to the message's bytes rather than a copy.
#include "bridge/grpc/event_codec.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bridge/v1/bridge.pb.h"

namespace bridge::grpc_frontend {
namespace {

template <typename Proto>
Proto Parse(const ::grpc::ByteBuffer& buffer) {
  ::grpc::ByteBuffer copy(buffer);
  ::grpc::ProtoBufferReader reader(&copy);
  Proto proto;
  EXPECT_TRUE(proto.ParseFromZeroCopyStream(&reader));
  return proto;
}

std::shared_ptr<const hub::Message> MakeMessage(std::string payload, uint64_t seq,
                                                std::string pattern = "") {
  return std::make_shared<const hub::Message>("news.eu", std::move(pattern), std::move(payload),
                                              seq);
}

TEST(EventCodecTest, ABatchOfSharedElementsParsesAsEventBatch) {
  auto small = MakeMessage("hello", 7);
  // Past 127 bytes the length takes two varint bytes, past 16383 three.
  auto large = MakeMessage(std::string(20000, 'x'), 8, "news.*");
  std::vector<::grpc::Slice> slices = {
      EncodeControlElement(hub::Event::Subscribed(hub::Topic::Channel("news.eu"))),
      EncodeMessageElement(*small),
      EncodeControlElement(hub::Event::Gap(hub::Topic::Pattern("news.*"), "slow_consumer", 3)),
      EncodeMessageElement(*large),
      EncodeMessageElement(*small),
  };
  ::grpc::ByteBuffer batch(slices.data(), slices.size());

  const v1::EventBatch parsed = Parse<v1::EventBatch>(batch);
  ASSERT_EQ(parsed.events_size(), 5);
  EXPECT_EQ(parsed.events(0).subscribed().channel(), "news.eu");
  EXPECT_EQ(parsed.events(1).message().payload(), "hello");
  EXPECT_EQ(parsed.events(1).message().seq(), 7u);
  EXPECT_EQ(parsed.events(1).message().channel(), "news.eu");
  EXPECT_EQ(parsed.events(2).gap().pattern(), "news.*");
  EXPECT_EQ(parsed.events(2).gap().reason(), "slow_consumer");
  EXPECT_EQ(parsed.events(2).gap().dropped(), 3u);
  EXPECT_EQ(parsed.events(3).message().payload().size(), 20000u);
  EXPECT_EQ(parsed.events(3).message().pattern(), "news.*");
  EXPECT_EQ(parsed.events(4).message().seq(), 7u);
  // Byte for byte what protobuf itself makes of the batch.
  std::string expected;
  ASSERT_TRUE(parsed.SerializeToString(&expected));
  EXPECT_EQ(batch.Length(), expected.size());
}

TEST(EventCodecTest, ElementsAreTheSubscribeEncodingWithAPrefix) {
  for (size_t size : {0, 5, 200, 20000}) {
    auto message = MakeMessage(std::string(size, 'p'), 1);
    const ::grpc::ByteBuffer& event = EncodeMessage(*message);
    const ::grpc::Slice& element = EncodeMessageElement(*message);
    EXPECT_EQ(element.size(), ElementSize(static_cast<uint32_t>(event.Length())));
    const v1::Event parsed = Parse<v1::Event>(event);
    EXPECT_EQ(parsed.message().payload().size(), size);

    // The Subscribe buffer is the element's tail: the same bytes, not a copy (a slice
    // small enough to be inlined is the exception, and too small to matter).
    ::grpc::Slice event_slice;
    ASSERT_TRUE(event.TrySingleSlice(&event_slice).ok());
    const uint8_t* element_end = element.begin() + element.size();
    if (element.size() > GRPC_SLICE_INLINED_SIZE) {
      EXPECT_EQ(event_slice.end(), element_end);
    } else {
      EXPECT_TRUE(
          std::equal(event_slice.begin(), event_slice.end(), element_end - event_slice.size()));
    }
    // Every later call returns the same encoding.
    EXPECT_EQ(&EncodeMessageElement(*message), &element);
    // The batch of this message alone is the element.
    const v1::EventBatch alone = Parse<v1::EventBatch>(EncodeMessageBatch(*message));
    ASSERT_EQ(alone.events_size(), 1);
    EXPECT_EQ(alone.events(0).SerializeAsString(), parsed.SerializeAsString());
  }
}

}  // namespace
}  // namespace bridge::grpc_frontend
