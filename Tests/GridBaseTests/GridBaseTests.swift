import Foundation
import GridBase
import Testing

@Suite struct GridBaseTests {
    @Test func quantitiesParseWhatOperatorsWrite() throws {
        #expect(try Quantity.duration("30d") == 30 * 86_400 * 1_000_000)
        #expect(try Quantity.duration("12h") == 12 * 3_600 * 1_000_000)
        #expect(try Quantity.duration("2w") == 14 * 86_400 * 1_000_000)
        #expect(try Quantity.bytes("50GB") == 50_000_000_000)
        #expect(try Quantity.bytes("512MiB") == 512 << 20)
        #expect(try Quantity.bytes("1000") == 1000)
        for bad in ["", "d", "-3d", "3 days", "1.5h"] { #expect(throws: QuantityError.self) { try Quantity.duration(bad) } }
        for bad in ["", "GB", "-1GB", "ten", "5XB"] { #expect(throws: QuantityError.self) { try Quantity.bytes(bad) } }
    }

    /// The inline xxHash must give the values libxxhash gave: ids hashed before the move are on disk.
    @Test func hashIsXXH3() {
        #expect(Hash.bytes([UInt8]()) == 0x2D06_8005_38D3_94C2)
        #expect(Hash.id("") == 0x2D06_8005_38D3_94C2)
        #expect(Hash.id("a") == Hash.bytes(Array("a".utf8)))
        let seeded = [UInt8](repeating: 7, count: 100).withUnsafeBytes { Hash.bytes($0, seed: 42) }
        let unseeded = [UInt8](repeating: 7, count: 100).withUnsafeBytes { Hash.bytes($0, seed: 0) }
        #expect(seeded != unseeded)
        #expect(unseeded == Hash.bytes([UInt8](repeating: 7, count: 100)))
    }

    @Test func writerEncodesLittleEndianVarintsAndStrings() {
        var w = BinaryWriter(capacity: 0)
        w.u8(1)
        w.u16(0x0302)
        w.u32(0x0706_0504)
        w.u64(0x0F0E_0D0C_0B0A_0908)
        #expect(w.bytes == Array(1...15))
        w = BinaryWriter()
        w.varint(300)
        w.svarint(-1)
        w.string("hé")
        w.utf8("ab")
        w.zeros(2)
        #expect(w.bytes == [0xAC, 0x02, 0x01, 3, 0x68, 0xC3, 0xA9, 0x61, 0x62, 0, 0])
    }

    @Test func idSyntax() {
        #expect(IdSyntax.isValid("agent-001", allowed: IdSyntax.gridId))
        #expect(IdSyntax.isValid("node/7:a@b_c.d", allowed: IdSyntax.gridId))
        #expect(!IdSyntax.isValid("", allowed: IdSyntax.gridId))
        #expect(!IdSyntax.isValid("has space", allowed: IdSyntax.gridId))
        #expect(!IdSyntax.isValid("semi;colon", allowed: IdSyntax.gridId))
        #expect(IdSyntax.isValid("semi;colon", allowed: IdSyntax.printableASCII))
        #expect(!IdSyntax.isValid("tab\t", allowed: IdSyntax.printableASCII))
        #expect(IdSyntax.isValid(String(repeating: "a", count: 256), allowed: IdSyntax.gridId))
        #expect(!IdSyntax.isValid(String(repeating: "a", count: 257), allowed: IdSyntax.gridId))
        #expect(IdSyntax.shown(String(repeating: "x", count: 100), limit: 10) == "xxxxxxxxxx...")
    }

    @Test func producerTagsAreTwelveHexDigits() {
        let tags = (0..<64).map { _ in ProducerTag.random() }
        for t in tags { #expect(t.count == 12 && t.allSatisfy { $0.isHexDigit && !$0.isUppercase }) }
        #expect(Set(tags).count == tags.count)
    }

    @Test func fileLockIsExclusiveAcrossOpenFiles() throws {
        let path = NSTemporaryDirectory() + "gridbase-lock-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { unlink(path) }
        let a = open(path, O_RDWR), b = open(path, O_RDWR)
        defer { close(a); close(b) }
        #expect(FileLock.tryExclusive(a) == .locked)
        #expect(FileLock.tryExclusive(b) == .busy)
        close(a)
        #expect(FileLock.tryExclusive(b) == .locked)
        #expect(FileLock.tryExclusive(-1) == .failed(EBADF))
    }

    @Test func accessChecks() {
        #expect(constantTimeEqual("Bearer abc", "Bearer abc"))
        #expect(!constantTimeEqual("Bearer abc", "Bearer abd"))
        #expect(!constantTimeEqual("Bearer abc", "Bearer ab"), "a prefix is not equal")
        #expect(!constantTimeEqual("", "x") && constantTimeEqual("", ""))
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] { #expect(isLoopbackHost(host), "\(host)") }
        for host in ["0.0.0.0", "10.0.0.1", "::", "example.com", "128.0.0.1"] { #expect(!isLoopbackHost(host), "\(host)") }
    }

    @Test func timeFormatRoundTrips() {
        for micros: Int64 in [0, 1, 1_764_380_000_123_456, -1] {
            #expect(TimeFormat.parseRFC3339(TimeFormat.rfc3339(micros: micros)) == micros)
        }
        #expect(TimeFormat.rfc3339(micros: 0) == "1970-01-01T00:00:00.000000Z")
    }

    @Test func configFileReadsTheSubset() throws {
        let f = try ConfigFile.parse("a = 1\n[t]\nb = \"x # y\" # comment\n", tables: ["t"])
        #expect(f.entries.map(\.key) == ["a", "b"])
        #expect(try f.entries[0].int() == 1)
        #expect(try f.entries[1].string() == "x # y")
        #expect(f.entries[1].table == "t")
        #expect(throws: ConfigFile.ParseError.self) { try ConfigFile.parse("[nope]\n") }
    }

    @Test func clocks() {
        let a = GridClock.monotonicNanos(), b = GridClock.monotonicNanos()
        #expect(b >= a)
        #expect(GridClock.nowMicros() > 1_700_000_000_000_000)
    }

    @Test func trimming() {
        #expect("  a b \n".trimmingWhitespace == "a b")
        #expect("".trimmingWhitespace == "")
    }
}
