#!/usr/bin/env bash
# Coverage-guided fuzzing of the pure modules with libFuzzer (docs/operations.md, Fuzzing).
#   scripts/fuzz.sh build              build the harnesses into .build/fuzz/bin
#   scripts/fuzz.sh run SECONDS [ARGS] run each target for SECONDS, extra ARGS to libFuzzer
# SwiftPM's --sanitize flags give no coverage (only the last -sanitize= is kept) and its executables
# clash with libFuzzer's main, so the modules are built with one -sanitize=fuzzer,address and each
# harness is linked by swiftc.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=.build/fuzz
LIBS="$BUILD/release"
BIN="$BUILD/bin"
TARGETS="safetensors protocol feedback config"
export SWIFT_BACKTRACE=enable=no   # the Swift backtracer misbehaves under ASan

objects() {
    for module in "$@"; do ls "$LIBS/$module.build"/*.o; done
}

build() {
    swift build -c release --build-path "$BUILD" -Xswiftc -sanitize=fuzzer,address --target Configuration
    mkdir -p "$BIN"
    for target in $TARGETS; do
        case $target in
            safetensors) modules="Safetensors" ;;
            protocol|feedback) modules="Safetensors NoiseKernelCore NoisedProtocol" ;;
            config) modules="Safetensors NoiseKernelCore NoisedProtocol Schedule Yams Configuration" ;;
        esac
        extra=()
        [ "$target" = config ] && extra=($(find "$LIBS/CYaml.build" -name '*.o'))
        # shellcheck disable=SC2046
        swiftc -O -parse-as-library -sanitize=fuzzer,address -I "$LIBS/Modules" \
            -Xcc -I -Xcc "$PWD/.build/fuzz/checkouts/Yams/Sources/CYaml/include" \
            "Fuzz/$target.swift" $(objects $modules) "${extra[@]}" -o "$BIN/$target" 2>"$BUILD/link-$target.log" \
            || { grep -v 'Cannot export local symbol' "$BUILD/link-$target.log" >&2; exit 1; }
    done
}

run() {
    local seconds=$1; shift
    for target in $TARGETS; do
        local corpus="$BUILD/corpus/$target"
        mkdir -p "$corpus" "$BUILD/crashes/$target"
        echo "== fuzz $target for ${seconds}s"
        # The checked-in seeds are read, new inputs go to the scratch corpus beside the build.
        "$BIN/$target" -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
            -artifact_prefix="$BUILD/crashes/$target/" "$@" "$corpus" "Fuzz/corpus/$target"
    done
}

case ${1:-} in
    build) build ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 build | run SECONDS [libFuzzer args]" >&2; exit 2 ;;
esac
