// swift-tools-version:6.1
// libFuzzer targets, one executable per decoder, in their own package so the root build stays lean. The harnesses
// live in the root package's FuzzTargets target (shared with Tests/FuzzRegressionTests); each executable here is
// only its LLVMFuzzerTestOneInput. The root package offers FuzzTargets as a product only with GRID_FUZZ_BUILD=1 set.
// Build: GRID_FUZZ_BUILD=1 swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
// (`make fuzz`, `make fuzz-smoke`). Adding a target: its name below and Targets/<name>/Entry.swift.
import PackageDescription

/// Target names; executable `fuzz-<name>`, sources in Targets/<name>/.
let fuzzTargets = [
    "wire-frames", "wire-batch", "segment-frames", "store-recovery", "spool-file", "event-json", "questions", "http-query",
    "index-file", "compacted-segment", "nats-parser", "grid-checkpoint", "text-tokens",
]

let package = Package(
    name: "GridFuzz",
    // Linux only, as the root package.
    dependencies: [
        .package(name: "SutraGridEvents", path: "../"),
    ],
    targets: fuzzTargets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: [.product(name: "FuzzTargets", package: "SutraGridEvents")],
            path: "Targets/\(name)"
        )
    }
)
