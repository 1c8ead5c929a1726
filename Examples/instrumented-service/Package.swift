// swift-tools-version:6.1
// An outside Swift service that reports to grid-eventd: it depends on this repository by path and links only the
// EventEmitter library (no storage engine, no liblz4, no libxxhash). `make example-check` builds it, runs it
// against a real daemon and checks that its events were stored.
import PackageDescription

let package = Package(
    name: "InstrumentedService",
    dependencies: [
        .package(name: "SutraGridEvents", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "instrumented-service",
            dependencies: [.product(name: "EventEmitter", package: "SutraGridEvents")]
        ),
    ]
)
