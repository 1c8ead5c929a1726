#if canImport(Glibc)
import Glibc
#endif

/// A decoder for one JSON event line (the flat form `grid-cli emit` reads, and the API form with `fields`) that
/// works on the UTF-8 bytes directly: no Foundation, no `JSONValue` tree for the top-level object, no dictionary.
/// It accepts and refuses what `GridEvent.parseJSON(JSONValue.parse(bytes))` does, with the same messages for
/// every check after the JSON syntax (syntax errors say "malformed JSON: <what> at byte <n>"), and gives the same
/// draft. The differential tests and the `event-json` fuzz target compare the two on every input.
///
/// JSON as RFC 8259, with what Foundation's decoder (behind `JSONValue.parse`) does where the RFC leaves room:
/// a leading UTF-8 byte order mark is skipped; nesting deeper than 512 is refused; of duplicate keys the first
/// wins; a number without fraction or exponent is an integer when it fits an Int64 (else a double), one with a
/// fraction or exponent is an integer when it is integral and within Int64's range (`1.0`, `1e2`, `-0.0`), else a
/// double; a number beyond the
/// double range is refused. Three deliberate differences from Foundation, which accepts there what is not UTF-8
/// JSON: a trailing comma (`{"a":1,}`, `[1,]`) is refused; so is a malformed value of a repeated key (Foundation
/// drops such a value without looking at it: `{"a":1,"a":01}` or invalid UTF-8 there pass); and so is UTF-16 or
/// UTF-32 text (Foundation guesses those from zero bytes or a byte order mark). The messages say so.
/// Cost: about 1 µs for a typical 140-byte catalogue line (release build).
public enum FlatEventDecoder {
    /// Decodes one line. Throws `EventError` with the same message as the Foundation-based path.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limit: Int = 1 << 20) throws(EventError) -> GridEvent.Draft {
        guard bytes.count <= limit else { throw EventError("JSON of \(bytes.count) bytes exceeds the limit of \(limit)") }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw EventError("malformed JSON: no value at byte 0") }
        if let fast = FastFlatLine.decode(base, bytes.count) { return fast }
        var p = JSONByteParser(base: base, count: bytes.count)
        let members = try p.topLevel()
        return try draft(members)
    }

    public static func decode(_ bytes: [UInt8], limit: Int = 1 << 20) throws(EventError) -> GridEvent.Draft {
        var result: Result<GridEvent.Draft, EventError> = .failure(EventError("malformed JSON: no value at byte 0"))
        bytes.withUnsafeBytes { b in
            do throws(EventError) { result = .success(try decode(b, limit: limit)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    static let reserved: Set<String> = ["event_type", "id", "timestamp", "entities"]

    /// The checks of `GridEvent.parseJSON`, in its order, over the top-level members (nil: not an object).
    static func draft(_ members: [(key: String, value: JSONValue)]?) throws(EventError) -> GridEvent.Draft {
        guard let members else { throw EventError("an event is a JSON object") }
        func member(_ key: String) -> JSONValue? {
            for m in members where m.key == key { return m.value }
            return nil
        }
        guard let typeName = member("event_type")?.stringValue else { throw EventError("missing \"event_type\" (a string)") }
        var id: String?
        if let v = member("id") {
            guard let s = v.stringValue else { throw EventError("\"id\" must be a string") }
            id = s
        }
        var timestamp: Int64?
        if let v = member("timestamp") {
            guard let s = v.stringValue, let t = TimeText.parse(s) else {
                throw EventError("\"timestamp\" must be RFC 3339, like 2026-11-29T02:10:00.123456Z")
            }
            timestamp = t
        }
        // The fields: a `fields` object (API form), else every other key (flat form), checked in name order.
        var fields: [(key: String, value: FieldValue)] = []
        if case .object(let nested)? = member("fields") {
            for k in nested.keys.sorted() {
                guard let f = nested[k]!.fieldValue else { throw EventError("field \"\(k)\" must be a string, number, boolean or null") }
                fields.append((k, f))
            }
        } else {
            var bad: String?
            for m in members where !reserved.contains(m.key) {
                fields.append((m.key, m.value.fieldValue ?? .null))
                if m.value.fieldValue == nil, bad == nil || m.key < bad! { bad = m.key }
            }
            if let bad { throw EventError("field \"\(bad)\" must be a string, number, boolean or null") }
        }
        let kind: GridEventKind
        if typeName == EventType.log.name {
            kind = .log(try LogEntry.make(fields: fields.sorted { $0.key < $1.key }, entities: try GridEvent.entityList(member("entities"))))
        } else if let type = EventType(name: typeName) {
            kind = try catalogueKind(type, fields)
        } else {
            try GridEvent.validateCustomName(typeName)
            let entities = try GridEvent.entityList(member("entities")) ?? []
            var dict: [String: FieldValue] = [:]
            dict.reserveCapacity(fields.count)
            for f in fields { dict[f.key] = f.value }
            kind = .custom(name: typeName, fields: dict, entities: entities)
        }
        if let id { try GridEvent.validateId(id, what: "event id") }
        return GridEvent.Draft(id: id, timestamp: timestamp, kind: kind)
    }

    /// `GridEventKind(type:fields:)` without the dictionary: unknown names first (in name order), then each field
    /// in catalogue order.
    static func catalogueKind(_ type: EventType, _ fields: [(key: String, value: FieldValue)]) throws(EventError) -> GridEventKind {
        let specs = type.fields
        var unknown: String?
        var values = [FieldValue](repeating: .null, count: specs.count)
        for f in fields {
            if let i = specs.firstIndex(where: { $0.name == f.key }) {
                values[i] = f.value
            } else if unknown == nil || f.key < unknown! {
                unknown = f.key
            }
        }
        if let unknown {
            throw EventError("\(type.name) has no field \"\(unknown)\"; its fields are \(specs.map(\.name).joined(separator: ", "))")
        }
        for (i, spec) in specs.enumerated() { values[i] = try GridEventKind.coerce(values[i], to: spec, in: type) }
        return try GridEventKind(type: type, values: values)
    }
}

/// RFC 8259 over UTF-8 bytes, as `FlatEventDecoder` describes. The top-level object's members come back as a list
/// (first of duplicate keys kept); nested values as `JSONValue`.
struct JSONByteParser {
    let base: UnsafePointer<UInt8>
    let count: Int
    var i = 0
    var depth = 0
    static let maxDepth = 512

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    func fail(_ what: String) -> EventError { EventError("malformed JSON: \(what) at byte \(i)") }

    @inline(__always) mutating func skipSpace() {
        while i < count {
            let c = base[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    /// The whole text: its top-level object's members, or nil when the value is valid JSON but not an object.
    mutating func topLevel() throws(EventError) -> [(key: String, value: JSONValue)]? {
        if count >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { i = 3 }
        // Foundation guesses UTF-16 and UTF-32 from a byte order mark or zero bytes at the start and reads those
        // too; JSON lines are UTF-8 (RFC 8259 8.1), so such text is refused, saying why.
        if count >= 2, (base[0] == 0xFE && base[1] == 0xFF) || (base[0] == 0xFF && base[1] == 0xFE)
            || (0..<min(count, 4)).contains(where: { base[$0] == 0 })
        {
            throw fail("the text looks like UTF-16 or UTF-32; only UTF-8 is read")
        }
        skipSpace()
        guard i < count else { throw fail("no value") }
        var members: [(key: String, value: JSONValue)]?
        if base[i] == UInt8(ascii: "{") {
            members = try objectMembers()
        } else {
            _ = try value()
        }
        skipSpace()
        guard i == count else { throw fail("unexpected text after the value") }
        return members
    }

    mutating func objectMembers() throws(EventError) -> [(key: String, value: JSONValue)] {
        depth += 1
        guard depth <= JSONByteParser.maxDepth else { throw fail("nesting deeper than \(JSONByteParser.maxDepth)") }
        i += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(8)
        skipSpace()
        if i < count, base[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return members
        }
        while true {
            skipSpace()
            if i < count, base[i] == UInt8(ascii: "}"), !members.isEmpty { throw fail("a trailing comma") }
            guard i < count, base[i] == UInt8(ascii: "\"") else { throw fail("expected a key in quotes") }
            let key = try string()
            skipSpace()
            guard i < count, base[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            i += 1
            skipSpace()
            if members.contains(where: { $0.key == key }) {
                // A repeated key's value is dropped (the first wins) but still has to be valid JSON up to the next
                // ',' or '}'; Foundation does not look inside it (it takes `12.5.` as one number token it never
                // reads), so say where the error is.
                do throws(EventError) {
                    _ = try value()
                    skipSpace()
                    guard i < count, base[i] == UInt8(ascii: ",") || base[i] == UInt8(ascii: "}") else {
                        throw fail("expected ',' or '}'")
                    }
                } catch {
                    throw EventError(error.message + " (in the value of the repeated key \"\(key.prefix(40))\", which would be ignored)")
                }
            } else {
                members.append((key, try value()))
            }
            skipSpace()
            guard i < count else { throw fail("unterminated object") }
            if base[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard base[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            i += 1
            depth -= 1
            return members
        }
    }

    mutating func value() throws(EventError) -> JSONValue {
        guard i < count else { throw fail("no value") }
        switch base[i] {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "{"):
            var o: [String: JSONValue] = [:]
            for m in try objectMembers() { o[m.key] = m.value }
            return .object(o)
        case UInt8(ascii: "["):
            depth += 1
            guard depth <= JSONByteParser.maxDepth else { throw fail("nesting deeper than \(JSONByteParser.maxDepth)") }
            i += 1
            var a: [JSONValue] = []
            skipSpace()
            if i < count, base[i] == UInt8(ascii: "]") {
                i += 1
                depth -= 1
                return .array(a)
            }
            while true {
                skipSpace()
                if i < count, base[i] == UInt8(ascii: "]"), !a.isEmpty { throw fail("a trailing comma") }
                a.append(try value())
                skipSpace()
                guard i < count else { throw fail("unterminated array") }
                if base[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                guard base[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                i += 1
                depth -= 1
                return .array(a)
            }
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(EventError) {
        let n = word.utf8CodeUnitCount
        guard count - i >= n, memcmp(base + i, word.utf8Start, n) == 0 else { throw fail("unexpected character") }
        i += n
    }

    @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    mutating func number() throws(EventError) -> JSONValue {
        let start = i
        var negative = false
        if base[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < count, isDigit(base[i]) else { throw fail("a number needs digits") }
        // Integer part: magnitude accumulated while it fits (as a negative number, so Int64.min fits too).
        var acc: Int64 = 0
        var fits = true
        if base[i] == UInt8(ascii: "0") {
            i += 1
            if i < count, isDigit(base[i]) { throw fail("a number cannot start with 0") }
        } else {
            while i < count, isDigit(base[i]) {
                let d = Int64(base[i] - 0x30)
                if fits {
                    let (m, o1) = acc.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.subtractingReportingOverflow(d)
                    if o1 || o2 { fits = false } else { acc = s }
                }
                i += 1
            }
        }
        var integral = true
        if i < count, base[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard i < count, isDigit(base[i]) else { throw fail("a fraction needs digits") }
            while i < count, isDigit(base[i]) { i += 1 }
        }
        if i < count, base[i] == UInt8(ascii: "e") || base[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < count, base[i] == UInt8(ascii: "+") || base[i] == UInt8(ascii: "-") { i += 1 }
            guard i < count, isDigit(base[i]) else { throw fail("an exponent needs digits") }
            while i < count, isDigit(base[i]) { i += 1 }
        }
        if integral, fits {
            if negative { return .int(acc) }
            if acc != Int64.min { return .int(-acc) }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            i = start
            throw fail("number out of range")
        }
        // An integer too large for Int64 stays a double (as Foundation does); a fraction or exponent that is
        // integral and fits becomes an integer.
        if !integral, d.rounded() == d, d >= -9.223372036854775808e18, d < 9.223372036854775808e18 { return .int(Int64(d)) }
        return .double(d)
    }

    /// A string at `i` (on its opening quote).
    mutating func string() throws(EventError) -> String {
        i += 1
        let start = i
        // Fast path: printable ASCII without escapes.
        while i < count {
            let c = base[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
            i += 1
        }
        var bytes = [UInt8](UnsafeBufferPointer(start: base + start, count: i - start))
        while i < count {
            let c = base[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                guard let s = String(validating: bytes, as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                i += 1
                guard i < count else { throw fail("unterminated string") }
                let e = base[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800, scalar <= 0xDBFF {
                        guard count - i >= 6, base[i] == UInt8(ascii: "\\"), base[i + 1] == UInt8(ascii: "u") else {
                            throw fail("a high surrogate without its low surrogate")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00, low <= 0xDFFF else { throw fail("a high surrogate without its low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00, scalar <= 0xDFFF {
                        throw fail("a low surrogate without its high surrogate")
                    }
                    appendUTF8(scalar, &bytes)
                default:
                    i -= 1
                    throw fail("unknown escape")
                }
            default:
                guard c >= 0x20 else { throw fail("a control character in a string") }
                bytes.append(c)
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws(EventError) -> UInt32 {
        guard count - i >= 4 else { throw fail("\\u needs four hex digits") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - 0x61 + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - 0x41 + 10)
            default: throw fail("\\u needs four hex digits")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    func appendUTF8(_ s: UInt32, _ out: inout [UInt8]) {
        switch s {
        case 0..<0x80: out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | s >> 6))
            out.append(UInt8(0x80 | s & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | s >> 12))
            out.append(UInt8(0x80 | s >> 6 & 0x3F))
            out.append(UInt8(0x80 | s & 0x3F))
        default:
            out.append(UInt8(0xF0 | s >> 18))
            out.append(UInt8(0x80 | s >> 12 & 0x3F))
            out.append(UInt8(0x80 | s >> 6 & 0x3F))
            out.append(UInt8(0x80 | s & 0x3F))
        }
    }
}

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
