#if canImport(Glibc)
import Glibc
#endif

/// The common line, decoded without building any key as a `String`: the flat form of a catalogue event whose keys
/// have no escapes, whose values are numbers, literals or strings of printable ASCII without escapes, at most 24
/// members, no duplicate key. Anything else (or any error) returns nil and the general path decodes the line,
/// so what is accepted, refused and said stays the general path's.
enum FastFlatLine {
    /// A member's value: a string is a byte range.
    enum Value {
        case string(Int, Int)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case null
    }

    static let maxMembers = 24

    /// Spec names per catalogue type code, as bytes.
    static let specNames: [[[UInt8]]] = {
        var table = [[[UInt8]]](repeating: [], count: 101)
        for t in EventType.allCases where t != .custom && t != .log { table[Int(t.rawValue)] = t.fields.map { Array($0.name.utf8) } }
        return table
    }()
    static let specs: [[FieldSpec]] = {
        var table = [[FieldSpec]](repeating: [], count: 101)
        for t in EventType.allCases where t != .custom && t != .log { table[Int(t.rawValue)] = t.fields }
        return table
    }()
    static let typeNames: [(name: [UInt8], type: EventType)] = EventType.allCases.filter { $0 != .custom && $0 != .log }.map { (Array($0.name.utf8), $0) }

    @inline(__always) static func equals(_ base: UnsafePointer<UInt8>, _ start: Int, _ length: Int, _ word: [UInt8]) -> Bool {
        length == word.count && word.withUnsafeBufferPointer { memcmp(base + start, $0.baseAddress!, length) == 0 }
    }

    @inline(__always) static func equals(_ base: UnsafePointer<UInt8>, _ start: Int, _ length: Int, _ word: StaticString) -> Bool {
        length == word.utf8CodeUnitCount && memcmp(base + start, word.utf8Start, length) == 0
    }

    static func text(_ base: UnsafePointer<UInt8>, _ start: Int, _ length: Int) -> String {
        String(unsafeUninitializedCapacity: length) { out in
            out.baseAddress!.update(from: base + start, count: length)
            return length
        }
    }

    static func decode(_ base: UnsafePointer<UInt8>, _ count: Int) -> GridEvent.Draft? {
        // Members on the stack: no allocation per line.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * maxMembers) { keys in
            withUnsafeTemporaryAllocation(of: Value.self, capacity: maxMembers) { values in
                values.initialize(repeating: .null)
                return decode(base, count, keyStart: keys.baseAddress!, keyLength: keys.baseAddress! + maxMembers, values: values.baseAddress!)
            }
        }
    }

    static func decode(
        _ base: UnsafePointer<UInt8>, _ count: Int, keyStart: UnsafeMutablePointer<Int>, keyLength: UnsafeMutablePointer<Int>,
        values: UnsafeMutablePointer<Value>
    ) -> GridEvent.Draft? {
        var p = JSONByteParser(base: base, count: count)
        p.skipSpace()
        guard p.i < count, base[p.i] == UInt8(ascii: "{") else { return nil }
        p.i += 1
        var n = 0
        p.skipSpace()
        guard p.i < count, base[p.i] != UInt8(ascii: "}") else { return nil }
        while true {
            p.skipSpace()
            guard n < maxMembers, let (ks, kl) = plainString(&p) else { return nil }
            for j in 0..<n where keyLength[j] == kl && memcmp(base + keyStart[j], base + ks, kl) == 0 { return nil }
            keyStart[n] = ks
            keyLength[n] = kl
            p.skipSpace()
            guard p.i < count, base[p.i] == UInt8(ascii: ":") else { return nil }
            p.i += 1
            p.skipSpace()
            guard p.i < count else { return nil }
            switch base[p.i] {
            case UInt8(ascii: "\""):
                guard let (vs, vl) = plainString(&p) else { return nil }
                values[n] = .string(vs, vl)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let v = try? p.number() else { return nil }
                switch v {
                case .int(let x): values[n] = .int(x)
                case .double(let x): values[n] = .double(x)
                default: return nil
                }
            case UInt8(ascii: "t"):
                guard (try? p.literal("true")) != nil else { return nil }
                values[n] = .bool(true)
            case UInt8(ascii: "f"):
                guard (try? p.literal("false")) != nil else { return nil }
                values[n] = .bool(false)
            case UInt8(ascii: "n"):
                guard (try? p.literal("null")) != nil else { return nil }
                values[n] = .null
            default:
                return nil
            }
            n += 1
            p.skipSpace()
            guard p.i < count else { return nil }
            if base[p.i] == UInt8(ascii: ",") {
                p.i += 1
                continue
            }
            guard base[p.i] == UInt8(ascii: "}") else { return nil }
            p.i += 1
            break
        }
        p.skipSpace()
        guard p.i == count else { return nil }

        // event_type: a catalogue name.
        var type: EventType?
        for j in 0..<n where equals(base, keyStart[j], keyLength[j], "event_type") {
            guard case .string(let s, let l) = values[j] else { return nil }
            for t in typeNames where equals(base, s, l, t.name) { type = t.type }
        }
        guard let type else { return nil }
        let names = specNames[Int(type.rawValue)]
        let fieldSpecs = specs[Int(type.rawValue)]
        return withUnsafeTemporaryAllocation(of: FieldValue.self, capacity: 8) { buffer -> GridEvent.Draft? in
            let fields = buffer.baseAddress!
            fields.initialize(repeating: .null, count: 8)
            defer { fields.deinitialize(count: 8) }
            return finish(base, type, names, fieldSpecs, n, keyStart, keyLength, values, fields)
        }
    }

    static func finish(
        _ base: UnsafePointer<UInt8>, _ type: EventType, _ names: [[UInt8]], _ fieldSpecs: [FieldSpec], _ n: Int,
        _ keyStart: UnsafeMutablePointer<Int>, _ keyLength: UnsafeMutablePointer<Int>, _ values: UnsafeMutablePointer<Value>,
        _ fields: UnsafeMutablePointer<FieldValue>
    ) -> GridEvent.Draft? {
        var idText: String?
        var timestamp: Int64?
        for j in 0..<n {
            let ks = keyStart[j]
            let kl = keyLength[j]
            if equals(base, ks, kl, "event_type") || equals(base, ks, kl, "entities") { continue }
            if equals(base, ks, kl, "id") {
                guard case .string(let s, let l) = values[j] else { return nil }
                idText = text(base, s, l)
                continue
            }
            if equals(base, ks, kl, "timestamp") {
                guard case .string(let s, let l) = values[j], let t = TimeText.parse(text(base, s, l)) else { return nil }
                timestamp = t
                continue
            }
            guard let k = names.firstIndex(where: { equals(base, ks, kl, $0) }) else { return nil }
            switch values[j] {
            case .string(let s, let l): fields[k] = .string(text(base, s, l))
            case .int(let x): fields[k] = .int(x)
            case .double(let x): fields[k] = .double(x)
            case .bool(let x): fields[k] = .bool(x)
            case .null: fields[k] = .null
            }
        }
        for k in 0..<names.count {
            guard let v = try? GridEventKind.coerce(fields[k], to: fieldSpecs[k], in: type) else { return nil }
            fields[k] = v
        }
        guard let kind = makeKind(type, fields) else { return nil }
        if let idText { guard (try? GridEvent.validateId(idText, what: "event id")) != nil else { return nil } }
        return GridEvent.Draft(id: idText, timestamp: timestamp, kind: kind)
    }

    /// `GridEventKind(type:values:)` over the coerced values, without an array; nil where it would throw.
    static func makeKind(_ type: EventType, _ v: UnsafeMutablePointer<FieldValue>) -> GridEventKind? {
        @inline(__always) func s(_ k: Int) -> String? {
            if case .string(let x) = v[k] { return x }
            return nil
        }
        @inline(__always) func i(_ k: Int) -> Int? {
            if case .int(let x) = v[k] { return Int(exactly: x) }
            return nil
        }
        @inline(__always) func d(_ k: Int) -> Double? { v[k].doubleValue }
        switch type {
        case .agentRegistered:
            guard let a = s(0), let h = s(1), let p = s(2), let e = s(3), let m = i(4) else { return nil }
            return .agentRegistered(agentId: a, hostname: h, platform: p, agentEndpoint: e, maxStorageNodes: m)
        case .agentHeartbeat:
            guard let a = s(0), let n = i(1) else { return nil }
            return .agentHeartbeat(agentId: a, storageNodeCount: n)
        case .agentDegraded:
            guard let a = s(0), let x = d(1) else { return nil }
            return .agentDegraded(agentId: a, secondsSinceHeartbeat: x)
        case .agentOffline:
            guard let a = s(0), case .time(let t) = v[1] else { return nil }
            return .agentOffline(agentId: a, lastSeen: t)
        case .agentRecovered:
            guard let a = s(0), let x = d(1) else { return nil }
            return .agentRecovered(agentId: a, downtimeSeconds: x)
        case .agentUnregistered:
            guard let a = s(0) else { return nil }
            return .agentUnregistered(agentId: a)
        case .spawnRequested:
            guard let n = s(0), let a = s(1), let port = i(2), let path = s(3), let mem = i(4) else { return nil }
            return .spawnRequested(nodeId: n, agentId: a, port: port, storagePath: path, memoryLimitMb: mem)
        case .spawnSucceeded:
            guard let n = s(0), let a = s(1), let pid = i(2), let port = i(3) else { return nil }
            return .spawnSucceeded(nodeId: n, agentId: a, pid: pid, port: port)
        case .spawnFailed:
            guard let n = s(0), let a = s(1), let e = s(2) else { return nil }
            return .spawnFailed(nodeId: n, agentId: a, error: e)
        case .stopRequested:
            guard let n = s(0), let a = s(1) else { return nil }
            return .stopRequested(nodeId: n, agentId: a)
        case .stopSucceeded:
            guard let n = s(0), let a = s(1) else { return nil }
            return .stopSucceeded(nodeId: n, agentId: a)
        case .stopFailed:
            guard let n = s(0), let a = s(1), let e = s(2) else { return nil }
            return .stopFailed(nodeId: n, agentId: a, error: e)
        case .nodeCrashed:
            guard let n = s(0), let a = s(1) else { return nil }
            var code: Int?
            var sig: Int?
            if v[2] != .null { guard let x = i(2) else { return nil }; code = x }
            if v[3] != .null { guard let x = i(3) else { return nil }; sig = x }
            return .nodeCrashed(nodeId: n, agentId: a, exitCode: code, signal: sig)
        case .nodeRestarted:
            guard let n = s(0), let a = s(1), let c = i(2), let pid = i(3) else { return nil }
            return .nodeRestarted(nodeId: n, agentId: a, restartCount: c, newPid: pid)
        case .clusterHealthy:
            guard let t = i(0), let h = i(1), let tn = i(2), let rn = i(3) else { return nil }
            return .clusterHealthy(totalAgents: t, healthyAgents: h, totalNodes: tn, runningNodes: rn)
        case .clusterDegraded:
            guard let t = i(0), let h = i(1), let r = s(2) else { return nil }
            return .clusterDegraded(totalAgents: t, healthyAgents: h, reason: r)
        case .clusterCritical:
            guard let t = i(0), let h = i(1), let r = s(2) else { return nil }
            return .clusterCritical(totalAgents: t, healthyAgents: h, reason: r)
        case .storageMetrics:
            guard let e = i(0), let b = i(1), let rate = d(2), let p99 = i(3), let rss = i(4) else { return nil }
            return .storageMetrics(events: e, bytesOnDisk: b, ingestRate: rate, ackP99Micros: p99, residentBytes: rss)
        case .eventsDropped:
            guard let p = s(0), let n = i(1) else { return nil }
            return .eventsDropped(producerId: p, dropped: n)
        case .custom, .log:
            return nil
        }
    }

    /// A string of printable ASCII without escapes at `p.i` (on its quote): its byte range; nil for anything else.
    @inline(__always) static func plainString(_ p: inout JSONByteParser) -> (Int, Int)? {
        guard p.i < p.count, p.base[p.i] == UInt8(ascii: "\"") else { return nil }
        let start = p.i + 1
        var j = start
        while j < p.count {
            let c = p.base[j]
            if c == UInt8(ascii: "\"") {
                p.i = j + 1
                return (start, j - start)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { return nil }
            j += 1
        }
        return nil
    }
}
