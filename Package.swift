// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SutraGridEvents",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "GridEvents", targets: ["GridEvents"]),
        .library(name: "EventWire", targets: ["EventWire"]),
        .library(name: "EventEmitter", targets: ["EventEmitter"]),
        .library(name: "EventQuery", targets: ["EventQuery"]),
        // A swift-log backend: log records at or above a level become `log` events through the emitter.
        .library(name: "GridEventsLogging", targets: ["GridEventsLogging"]),
        .library(name: "NATSClient", targets: ["NATSClient"]),
        // The release number every executable reports with --version.
        .library(name: "GridVersion", targets: ["GridVersion"]),
        // nats-server child processes on loopback (tests, grid-chaos, the benchmarks).
        .library(name: "NATSTestSupport", targets: ["NATSTestSupport"]),
        // The decoders' fuzz harnesses, shared by Fuzz/ (libFuzzer) and Tests/FuzzRegressionTests.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
        .executable(name: "grid-eventd", targets: ["grid-eventd"]),
        .executable(name: "grid-cli", targets: ["grid-cli"]),
        .executable(name: "grid-master", targets: ["grid-master"]),
        .executable(name: "grid-agent", targets: ["grid-agent"]),
        .executable(name: "segdump", targets: ["segdump"]),
        .executable(name: "store-stress", targets: ["store-stress"]),
        .executable(name: "emit-load", targets: ["emit-load"]),
        .executable(name: "grid-chaos", targets: ["grid-chaos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .target(name: "EventStore", dependencies: ["CLZ4", "CXXHash"]),
        .target(name: "GridVersion"),
        // sd_notify readiness for the daemons (Type=notify units).
        .target(name: "SystemdNotify"),
        .target(name: "GridEvents", dependencies: ["EventStore"]),
        .target(name: "EventWire", dependencies: ["GridEvents", "EventStore"]),
        .target(
            name: "EventEmitter",
            dependencies: ["EventWire", "GridEvents", "EventStore", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "EventQuery", dependencies: ["EventStore", "GridEvents"]),
        .target(
            name: "GridEventsLogging",
            dependencies: ["GridEvents", "EventEmitter", "EventStore", .product(name: "Logging", package: "swift-log")]
        ),
        // OTLP logs (protobuf generated once from Proto/otlp_logs.proto, and JSON) mapped to grid events.
        .target(
            name: "GridOTLP",
            dependencies: ["GridEvents", "EventStore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // The NATS client protocol, pure (bytes in, operations out): fuzzed without pulling in NIO.
        .target(name: "NATSProtocol"),
        // nats-server child processes on loopback for tests, grid-chaos and benchmarks.
        .target(name: "NATSTestSupport"),
        // A NATS and JetStream client on SwiftNIO; knows nothing of the store.
        .target(
            name: "NATSClient",
            dependencies: [
                "NATSProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FuzzTargets",
            dependencies: ["EventStore", "GridEvents", "EventWire", "EventEmitter", "EventQuery", "NATSProtocol"]
        ),
        // Replication through NATS JetStream: the host-side replicator and the aggregator (cluster view).
        .target(
            name: "EventReplication",
            dependencies: [
                "NATSClient", "EventStore", "GridEvents",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "EventDaemon",
            dependencies: [
                "EventStore", "GridEvents", "EventWire", "EventQuery", "EventReplication", "GridEventsLogging", "GridOTLP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The dashboard's page, stylesheet and script, served by HTTPAPI (Dashboard.swift).
            resources: [.copy("Dashboard")]
        ),
        .target(
            name: "GridMaster",
            dependencies: [
                "EventEmitter", "GridEvents", "EventStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "GridAgent",
            dependencies: [
                "GridMaster", "EventEmitter", "EventWire", "GridEvents", "EventStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-master",
            dependencies: [
                "GridVersion", "SystemdNotify", "GridMaster", "EventEmitter", "GridEventsLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-agent",
            dependencies: [
                "GridVersion", "SystemdNotify", "GridAgent", "EventEmitter", "GridEventsLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-eventd",
            dependencies: [
                "GridVersion", "SystemdNotify", "EventDaemon", "EventStore", "GridEventsLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-cli",
            dependencies: [
                "GridVersion", "EventEmitter", "GridEvents",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "segdump",
            dependencies: ["GridVersion", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/segdump"
        ),
        .executableTarget(
            name: "emit-load",
            dependencies: ["GridVersion", "EventEmitter", "GridEvents", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/emit-load"
        ),
        .executableTarget(
            name: "grid-chaos",
            dependencies: [
                "GridVersion",
                "EventEmitter", "EventWire", "GridEvents", "EventStore", "NATSTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/grid-chaos"
        ),
        .executableTarget(
            name: "query-bench",
            dependencies: ["GridVersion", "EventQuery", "GridEvents", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/query-bench"
        ),
        .executableTarget(
            name: "store-stress",
            dependencies: ["GridVersion", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/store-stress"
        ),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore"]),
        .testTarget(name: "ReplicationUnitTests", dependencies: ["EventReplication", "EventStore", "GridEvents"]),
        .testTarget(name: "NATSClientTests", dependencies: ["NATSClient", "NATSProtocol", "NATSTestSupport"]),
        // The crash-state explorer: power loss at every recorded system call (see its doc comment).
        .testTarget(name: "CrashStateTests", dependencies: ["EventStore"]),
        .testTarget(name: "GridEventsTests", dependencies: ["GridEvents", "EventStore", "EventWire"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets", "EventStore", "GridEvents"]),
        // The query oracle (random worlds and plain-scan answers) shared by the query and HTTP tests.
        .target(name: "QueryOracle", dependencies: ["EventQuery", "GridEvents", "EventStore"], path: "Tests/Support/QueryOracle"),
        .testTarget(name: "QueryTests", dependencies: ["EventQuery", "GridEvents", "EventStore", "QueryOracle"]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "EventDaemon", "EventQuery", "EventEmitter", "EventWire", "GridEvents", "EventStore", "GridMaster", "GridAgent",
                "EventReplication", "NATSClient", "NATSTestSupport", "GridVersion",
            ]
        ),
        // Issue 18: the swift-log backend, /metrics, OTLP logs in, JSON ingest over HTTP, the OpenAPI contract.
        .testTarget(
            name: "InteropTests",
            dependencies: [
                "EventDaemon", "EventEmitter", "GridEvents", "EventStore", "GridEventsLogging", "GridOTLP", "GridMaster", "EventReplication",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "HTTPTests",
            dependencies: [
                "EventDaemon", "EventQuery", "GridEvents", "EventStore", "EventEmitter", "QueryOracle",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)
