// swift-tools-version:6.1
import PackageDescription

/// `GRID_EVENTD_FAULTS` (system-call failures injected into the daemon's store) exists in debug builds, which
/// the tests use, and in the release build `make chaos` makes with `-DGRID_FAULT_INJECTION`; never in a release.
let faultInjection = SwiftSetting.define("GRID_FAULT_INJECTION", .when(configuration: .debug))

/// The decoders' fuzz harnesses (target `FuzzTargets`) are a product only for Fuzz/Package.swift, which `make
/// fuzz-build` builds with GRID_FUZZ_BUILD=1 set; otherwise they are a target for Tests/FuzzRegressionTests alone,
/// and a package that depends on this one sees no fuzz or test code among its products.
let fuzzProducts: [Product] =
    Context.environment["GRID_FUZZ_BUILD"] == "1" ? [.library(name: "FuzzTargets", targets: ["FuzzTargets"])] : []

let package = Package(
    name: "SutraGridEvents",
    // Linux only: the system calls go through Glibc (no Darwin branches), so no Apple platform is declared.
    // (Tests and CI run on Debian; see docs/ARCHITECTURE.md.)
    products: [
        .library(name: "GridBase", targets: ["GridBase"]),
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
        // Generated events for tests, tools and benchmarks (never linked by a production module): realistic grid
        // events (SampleGrid) and self-checking synthetic store batches (SyntheticEvents).
        .library(name: "GridFixtures", targets: ["GridFixtures"]),
        .library(name: "StoreFixtures", targets: ["StoreFixtures"]),
        .executable(name: "grid-eventd", targets: ["grid-eventd"]),
        .executable(name: "grid-cli", targets: ["grid-cli"]),
        .executable(name: "grid-master", targets: ["grid-master"]),
        .executable(name: "grid-agent", targets: ["grid-agent"]),
        .executable(name: "segdump", targets: ["segdump"]),
        .executable(name: "store-stress", targets: ["store-stress"]),
        .executable(name: "emit-load", targets: ["emit-load"]),
        .executable(name: "grid-chaos", targets: ["grid-chaos"]),
    ] + fuzzProducts,
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
        // The module graph, bottom up (docs/ARCHITECTURE.md draws it):
        //   CXXHashInline -> GridBase -> GridEvents -> EventWire, EmitterSpool -> EventEmitter   (what a producer links)
        //   GridBase, CLZ4 -> EventStore; GridEvents + EventStore -> EventRecords -> EventQuery -> EventDaemon
        // liblz4 is the only C library linked (by EventStore); xxHash is compiled in from its header.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // XXH3 from the header-only xxHash (XXH_INLINE_ALL): needs xxhash.h to build, no library to link.
        // Optimised in debug builds too: at -O0 XXH3 is 40x slower (253 ns instead of 6 ns per id, 1 GB/s instead
        // of 13-16 GB/s), which the tests, all debug, would pay on every id and frame checksum.
        .target(name: "CXXHashInline", cSettings: [.unsafeFlags(["-O2"])]),
        // The base: byte writer, hashing, clocks, lock, time format, quantities, config reader, Unix socket, flock,
        // id syntax, producer tags. No engine, no catalogue.
        .target(name: "GridBase", dependencies: ["CXXHashInline"]),
        .target(name: "EventStore", dependencies: ["GridBase", "CLZ4"]),
        .target(name: "GridEvents", dependencies: ["GridBase"]),
        // An event as the store keeps it: concept record and adjacency entries, and back.
        .target(name: "EventRecords", dependencies: ["GridEvents", "EventStore"]),
        .target(name: "EventWire", dependencies: ["GridEvents"]),
        .target(name: "GridVersion"),
        // sd_notify readiness for the daemons (Type=notify units).
        .target(name: "SystemdNotify"),
        // The emitter's spool file (docs/FORMAT.md, "Emitter spool"): its one reader and writer, with a public API
        // for the emitter and the spool's fuzz target.
        .target(name: "EmitterSpool", dependencies: ["GridBase", "GridEvents"]),
        // What every grid process and any outside Swift service links: no engine, no liblz4, no libxxhash.
        .target(
            name: "EventEmitter",
            dependencies: ["EventWire", "GridEvents", "EmitterSpool", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "EventQuery", dependencies: ["EventStore", "GridEvents", "EventRecords"]),
        // Test, tool and benchmark fixtures: no production module depends on them.
        .target(name: "GridFixtures", dependencies: ["GridEvents"]),
        .target(name: "StoreFixtures", dependencies: ["EventStore"]),
        // The control plane's error type and its one HTTP client, shared by master, agent and grid-cli.
        .target(name: "GridControl", dependencies: ["GridEvents"]),
        .target(
            name: "GridEventsLogging",
            dependencies: ["GridEvents", "EventEmitter", .product(name: "Logging", package: "swift-log")]
        ),
        // OTLP logs (protobuf generated once from Proto/otlp_logs.proto, and JSON) mapped to grid events.
        .target(
            name: "GridOTLP",
            dependencies: ["GridEvents", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
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
            dependencies: [
                "EventStore", "GridEvents", "EventRecords", "EventWire", "EmitterSpool", "EventQuery", "NATSProtocol", "GridFixtures",
            ]
        ),
        // Replication through NATS JetStream: the host-side replicator and the aggregator (cluster view).
        .target(
            name: "EventReplication",
            dependencies: [
                "NATSClient", "EventStore", "GridEvents", "EventRecords",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Header and idle timeouts and connection caps for the HTTP ports (grid-eventd's API, grid-master's):
        // two NIO handlers in Hummingbird's HTTP/1 pipeline.
        .target(
            name: "HTTPLimits",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "EventDaemon",
            dependencies: [
                "EventStore", "GridEvents", "EventRecords", "EventWire", "EventQuery", "EventReplication", "GridEventsLogging", "GridOTLP", "HTTPLimits",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The dashboard's page, stylesheet and script, served by HTTPAPI (Dashboard.swift).
            resources: [.copy("Dashboard")],
            swiftSettings: [faultInjection]
        ),
        .target(
            name: "GridMaster",
            dependencies: [
                "GridControl", "EventEmitter", "GridEvents",
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
                "GridControl", "EventEmitter", "EventWire", "GridEvents",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-master",
            dependencies: [
                "GridVersion", "SystemdNotify", "GridMaster", "GridControl", "EventEmitter", "GridEventsLogging", "HTTPLimits",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-agent",
            dependencies: [
                "GridVersion", "SystemdNotify", "GridAgent", "GridControl", "EventEmitter", "GridEventsLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "grid-eventd",
            dependencies: [
                "GridVersion", "SystemdNotify", "EventDaemon", "EventStore", "GridEventsLogging", "HTTPLimits",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [faultInjection]
        ),
        .executableTarget(
            name: "grid-cli",
            dependencies: [
                "GridVersion", "GridControl", "EventEmitter", "GridEvents",
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
            dependencies: ["GridVersion", "GridFixtures", "EventEmitter", "GridEvents", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/emit-load"
        ),
        .executableTarget(
            name: "grid-chaos",
            dependencies: [
                "GridVersion", "GridFixtures",
                "EventEmitter", "EventWire", "GridEvents", "EventStore", "EventRecords", "NATSTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/grid-chaos"
        ),
        .executableTarget(
            name: "query-bench",
            dependencies: ["GridVersion", "GridFixtures", "EventQuery", "GridEvents", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/query-bench"
        ),
        .executableTarget(
            name: "store-stress",
            dependencies: ["GridVersion", "StoreFixtures", "EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/store-stress"
        ),
        .testTarget(name: "EventStoreTests", dependencies: ["StoreFixtures", "EventStore"]),
        .testTarget(name: "ReplicationUnitTests", dependencies: ["GridFixtures", "EventReplication", "EventStore", "GridEvents", "EventRecords"]),
        .testTarget(name: "NATSClientTests", dependencies: ["NATSClient", "NATSProtocol", "NATSTestSupport"]),
        // The crash-state explorer: power loss at every recorded system call (see its doc comment).
        .testTarget(name: "CrashStateTests", dependencies: ["StoreFixtures", "EventStore"]),
        .testTarget(name: "GridBaseTests", dependencies: ["GridBase"]),
        .testTarget(name: "GridControlTests", dependencies: ["GridControl", "GridEvents"]),
        // The emitter's parts without processes: the queue, the delivery decisions over every state, the window, and
        // the queue policy and the threads' end with no daemon.
        .testTarget(name: "EventEmitterTests", dependencies: ["EventEmitter", "EmitterSpool"]),
        .testTarget(name: "GridEventsTests", dependencies: ["GridFixtures", "GridEvents", "EventStore", "EventRecords", "EventWire"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets", "EventStore", "GridEvents", "EventRecords"]),
        // The query oracle (random worlds and plain-scan answers) shared by the query and HTTP tests.
        .target(name: "QueryOracle", dependencies: ["EventQuery", "GridEvents", "EventStore"], path: "Tests/Support/QueryOracle"),
        .testTarget(name: "QueryTests", dependencies: ["GridFixtures", "EventQuery", "GridEvents", "EventStore", "QueryOracle"]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "GridFixtures",
                "EventDaemon", "EventQuery", "EventEmitter", "EmitterSpool", "EventWire", "GridEvents", "EventStore", "EventRecords", "GridControl", "GridMaster", "GridAgent",
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
                "GridFixtures",
                "EventDaemon", "EventQuery", "GridEvents", "EventStore", "EventEmitter", "QueryOracle",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            // The recorded answers HTTPGoldenTests compares with, read from the source tree.
            exclude: ["Golden"]
        ),
    ]
)
