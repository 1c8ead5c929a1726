import Foundation

/// A JSON value, parsed with its integers kept exact.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// Parses UTF-8 JSON text of at most `limit` bytes.
    public static func parse(_ data: some Collection<UInt8>, limit: Int = 1 << 20) throws(EventError) -> JSONValue {
        guard data.count <= limit else { throw EventError("JSON of \(data.count) bytes exceeds the limit of \(limit)") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(data))
        } catch let error as DecodingError {
            throw EventError("malformed JSON: \(JSONValue.describe(error))")
        } catch {
            throw EventError("malformed JSON: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let c): return (c.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String ?? c.debugDescription
        case .keyNotFound(let k, _): return "missing key \(k.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return c.debugDescription
        @unknown default: return "\(error)"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }

    /// The field value this JSON value stands for (objects and arrays have none).
    public var fieldValue: FieldValue? {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array, .object: return nil
        }
    }
}

/// Writes JSON text with keys in the order given, into UTF-8 bytes (appending to an array of bytes is a copy;
/// appending to a `String` also checks and updates its flags, which costs more than the copy for short pieces).
public struct JSONWriter {
    /// The UTF-8 of the text written so far.
    public private(set) var bytes: [UInt8] = []

    /// The text written so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public init() { bytes.reserveCapacity(256) }

    init(reserving capacity: Int) { bytes.reserveCapacity(capacity) }

    public mutating func raw(_ s: String) { append(s) }

    @inline(__always)
    private mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// Takes back the last `n` bytes written (`JSONStreamEncoder`'s placeholder for a super encoder).
    mutating func dropLast(_ n: Int) { bytes.removeLast(n) }

    /// Whether `s` is written as it is between quotes (printable ASCII but `"`, `\\`, `<`, `>`, `&`).
    static func isPlain(_ s: String) -> Bool {
        func plain(_ c: UInt8) -> Bool { c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5C && c != 0x3C && c != 0x3E && c != 0x26 }
        return s.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(plain) } ?? s.utf8.allSatisfy(plain)
    }

    /// An object member's key and colon, after a comma unless it is the `first`.
    mutating func member(_ key: String, first: Bool) {
        if !first { bytes.append(0x2C) }
        if Self.isPlain(key) {
            bytes.append(0x22)
            append(key)
            bytes.append(0x22)
        } else {
            string(key)
        }
        bytes.append(0x3A)
    }

    public mutating func string(_ s: String) {
        // Most strings (ids, names, times) need no escaping: copied whole.
        bytes.append(0x22)
        if Self.isPlain(s) {
            append(s)
            bytes.append(0x22)
            return
        }
        for u in s.unicodeScalars {
            switch u {
            case "\"": append("\\\"")
            case "\\": append("\\\\")
            case "\n": append("\\n")
            case "\r": append("\\r")
            case "\t": append("\\t")
            case "<": append("\\u003c")  // safe to embed in HTML
            case ">": append("\\u003e")
            case "&": append("\\u0026")
            default:
                if u.value < 0x20 || u.value == 0x2028 || u.value == 0x2029 {
                    let hex = String(u.value, radix: 16)
                    append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    bytes.append(contentsOf: UTF8.encode(u)!)
                }
            }
        }
        bytes.append(0x22)
    }

    /// A time as a JSON string in the project's one text form (`TimeText.format`: RFC 3339, UTC, six fractional
    /// digits), written without building intermediate strings. Years outside 0-9999 go through `TimeText.format`.
    public mutating func time(_ micros: Int64) {
        // Years 0000-9999 only; anything else (and the arithmetic's overflow) is TimeText.format's.
        guard micros >= -62_167_219_200_000_000, micros < 253_402_300_800_000_000 else {
            string(TimeText.format(micros))
            return
        }
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = Int(micros - seconds * 1_000_000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else {
            string(TimeText.format(micros))
            return
        }
        var b = [UInt8](repeating: 0, count: 29)
        func put(_ v: Int, at: Int, width: Int) {
            var v = v
            for i in stride(from: at + width - 1, through: at, by: -1) {
                b[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        b[0] = 34
        put(Int(year), at: 1, width: 4)
        b[5] = 45
        put(month, at: 6, width: 2)
        b[8] = 45
        put(day, at: 9, width: 2)
        b[11] = 84
        put(secondOfDay / 3600, at: 12, width: 2)
        b[14] = 58
        put(secondOfDay / 60 % 60, at: 15, width: 2)
        b[17] = 58
        put(secondOfDay % 60, at: 18, width: 2)
        b[20] = 46
        put(fraction, at: 21, width: 6)
        b[27] = 90
        b[28] = 34
        bytes.append(contentsOf: b)
    }

    public mutating func number(_ d: Double) {
        if d.isFinite {
            if d.rounded() == d && abs(d) < 1e15 { append(String(Int64(d)) + ".0") } else { append(String(d)) }
        } else {
            append("null")
        }
    }

    public mutating func value(_ v: FieldValue) {
        switch v {
        case .null: append("null")
        case .bool(let b): append(b ? "true" : "false")
        case .int(let i): append(String(i))
        case .double(let d): number(d)
        case .string(let s): string(s)
        case .time(let t): string(TimeText.format(t))
        }
    }

    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: append("null")
        case .bool(let b): append(b ? "true" : "false")
        case .int(let i): append(String(i))
        case .double(let d): number(d)
        case .string(let s): string(s)
        case .array(let a):
            append("[")
            for (i, x) in a.enumerated() {
                if i > 0 { append(",") }
                value(x)
            }
            append("]")
        case .object(let o):
            append("{")
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { append(",") }
                string(k)
                append(":")
                value(o[k]!)
            }
            append("}")
        }
    }

    public mutating func stringArray(_ a: [String]) {
        append("[")
        for (i, s) in a.enumerated() {
            if i > 0 { append(",") }
            string(s)
        }
        append("]")
    }
}
