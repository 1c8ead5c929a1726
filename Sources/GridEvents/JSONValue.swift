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

/// Writes JSON text with keys in the order given.
public struct JSONWriter {
    public private(set) var text = ""

    public init() { text.reserveCapacity(256) }

    public mutating func raw(_ s: String) { text += s }

    public mutating func string(_ s: String) {
        text += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "<": text += "\\u003c"  // safe to embed in HTML
            case ">": text += "\\u003e"
            case "&": text += "\\u0026"
            default:
                if u.value < 0x20 || u.value == 0x2028 || u.value == 0x2029 {
                    let hex = String(u.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    text.unicodeScalars.append(u)
                }
            }
        }
        text += "\""
    }

    public mutating func number(_ d: Double) {
        if d.isFinite {
            if d.rounded() == d && abs(d) < 1e15 { text += String(Int64(d)) + ".0" } else { text += String(d) }
        } else {
            text += "null"
        }
    }

    public mutating func value(_ v: FieldValue) {
        switch v {
        case .null: text += "null"
        case .bool(let b): text += b ? "true" : "false"
        case .int(let i): text += String(i)
        case .double(let d): number(d)
        case .string(let s): string(s)
        case .time(let t): string(TimeText.format(t))
        }
    }

    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: text += "null"
        case .bool(let b): text += b ? "true" : "false"
        case .int(let i): text += String(i)
        case .double(let d): number(d)
        case .string(let s): string(s)
        case .array(let a):
            text += "["
            for (i, x) in a.enumerated() {
                if i > 0 { text += "," }
                value(x)
            }
            text += "]"
        case .object(let o):
            text += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { text += "," }
                string(k)
                text += ":"
                value(o[k]!)
            }
            text += "}"
        }
    }

    public mutating func stringArray(_ a: [String]) {
        text += "["
        for (i, s) in a.enumerated() {
            if i > 0 { text += "," }
            string(s)
        }
        text += "]"
    }
}
