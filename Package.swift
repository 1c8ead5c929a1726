// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SutraGridEvents",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "GridEvents", targets: ["GridEvents"]),
        .executable(name: "segdump", targets: ["segdump"]),
        .executable(name: "store-stress", targets: ["store-stress"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .target(name: "EventStore", dependencies: ["CLZ4", "CXXHash"]),
        .target(name: "GridEvents", dependencies: ["EventStore"]),
        .executableTarget(
            name: "segdump",
            dependencies: ["EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/segdump"
        ),
        .executableTarget(
            name: "store-stress",
            dependencies: ["EventStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/store-stress"
        ),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore"]),
        .testTarget(name: "GridEventsTests", dependencies: ["GridEvents", "EventStore"]),
    ]
)
