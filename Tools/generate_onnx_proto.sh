#!/bin/sh
# Regenerates Sources/StrataONNX/Generated/onnx.pb.swift from ONNX's own schema, once, by hand:
# the build never runs protoc (swift-protobuf's plugin takes minutes to build).
#
#   apt-get install libonnx-dev protobuf-compiler      # /usr/include/onnx/onnx.proto (ONNX 1.12), protoc 3.21
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf /tmp/swpb   # the version Package.swift names
#   (cd /tmp/swpb && swift build -c release --product protoc-gen-swift)
#   sh Tools/generate_onnx_proto.sh /tmp/swpb/.build/release/protoc-gen-swift
set -eu
plugin=${1:?usage: generate_onnx_proto.sh PATH/TO/protoc-gen-swift}
out=Sources/StrataONNX/Generated
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" --swift_out="$out" -I /usr/include/onnx /usr/include/onnx/onnx.proto
echo "wrote $out/onnx.pb.swift from /usr/include/onnx/onnx.proto ($(protoc --version))"
