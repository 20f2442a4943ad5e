# The libFuzzer target, shared by tests/fuzz/CMakeLists.txt (a clang build of the whole
# project with -DBRIDGE_FUZZ=ON) and tests/fuzz/standalone (just this target).
function(bridge_add_client_frame_fuzzer root)
  add_executable(client_frame_fuzzer ${root}/tests/fuzz/client_frame_fuzzer.cc
    ${root}/bridge/ws/client_frame.cc ${root}/bridge/ws/server_frame.cc
    ${root}/bridge/redis/subscribe_refused.cc)
  target_include_directories(client_frame_fuzzer PRIVATE ${root})
  target_compile_options(client_frame_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(client_frame_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(client_frame_fuzzer PRIVATE absl::status absl::strings absl::str_format absl::base
    nlohmann_json::nlohmann_json)
endfunction()
