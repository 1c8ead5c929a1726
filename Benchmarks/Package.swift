// swift-tools-version:6.1
// Benchmarks live in their own package so the root build stays lean. `make bench` runs them.
import PackageDescription

let package = Package(
    name: "GridBenchmarks",
    // Linux only, as the root package.
    dependencies: [
        .package(name: "SutraGridEvents", path: "../"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(
            name: "grid-bench",
            dependencies: [
                "CSQLite",
                .product(name: "EventStore", package: "SutraGridEvents"),
                .product(name: "GridEvents", package: "SutraGridEvents"),
                .product(name: "GridFixtures", package: "SutraGridEvents"),
                .product(name: "EventQuery", package: "SutraGridEvents"),
                .product(name: "GridVersion", package: "SutraGridEvents"),
                .product(name: "NATSTestSupport", package: "SutraGridEvents"),
                .product(name: "EventEmitter", package: "SutraGridEvents"),
                .product(name: "GridEventsLogging", package: "SutraGridEvents"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
