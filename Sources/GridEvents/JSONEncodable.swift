// The value types `JSONStreamEncoder` knows (JSONStreamEncoder.swift): fragments that write their own JSON,
// times, members written as `null`, objects whose keys are data.

/// A value that writes its own JSON; `JSONStreamEncoder` calls `writeJSON(into:)` instead of `encode(to:)`.
/// The default `encode(to:)`, for any other encoder, encodes the same JSON as a tree (`JSONValue`).
public protocol JSONStreamWritable: Encodable {
    func writeJSON(into w: inout JSONWriter)
}

extension JSONStreamWritable {
    public func encode(to encoder: any Encoder) throws {
        var w = JSONWriter()
        writeJSON(into: &w)
        try JSONValue.parse(w.bytes).encode(to: encoder)
    }
}

/// JSON text already encoded (an event's API form, a query), written as it is.
public struct RawJSON: JSONStreamWritable, Sendable, Equatable {
    public var text: String

    /// `text` must be one JSON value.
    public init(_ text: String) { self.text = text }

    /// The JSON `write` writes.
    public init(writing write: (inout JSONWriter) -> Void) {
        var w = JSONWriter()
        write(&w)
        text = w.text
    }

    public func writeJSON(into w: inout JSONWriter) { w.raw(text) }
}

/// A timestamp (microseconds since the epoch) encoded as the project's one text form of a time (`TimeText.format`).
public struct JSONTime: JSONStreamWritable, Sendable, Equatable {
    public var micros: Int64

    public init(_ micros: Int64) { self.micros = micros }

    public func writeJSON(into w: inout JSONWriter) { w.time(micros) }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(TimeText.format(micros))
    }
}

/// An optional property written as `null` when nil (a synthesized `encode(to:)` leaves a nil optional out).
@propertyWrapper
public struct Nullable<Value: Encodable>: Encodable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension Nullable: Sendable where Value: Sendable {}

/// A dictionary property encoded as an object with its keys sorted (a dictionary's own order changes from run to
/// run); decoded as a plain dictionary.
@propertyWrapper
public struct SortedKeys<Value: Codable>: Codable {
    public var wrappedValue: [String: Value]

    public init(wrappedValue: [String: Value]) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        try JSONObject(wrappedValue.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }).encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws { wrappedValue = try [String: Value](from: decoder) }
}

extension SortedKeys: Sendable where Value: Sendable {}
extension SortedKeys: Equatable where Value: Equatable {}

/// A JSON object whose keys are data (event type names, ...), written in the order of `members`.
public struct JSONObject<Value: Encodable>: Encodable {
    public var members: [(key: String, value: Value)]

    public init(_ members: [(key: String, value: Value)]) { self.members = members }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: JSONKey.self)
        for (key, value) in members { try c.encode(value, forKey: JSONKey(key)) }
    }
}

extension JSONObject: Sendable where Value: Sendable {}

/// A coding key that is any string.
public struct JSONKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { return nil }
}

extension JSONValue: Encodable {
    /// Encodes the tree as it is (an object's keys sorted, as `JSONWriter.value` writes them).
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let a):
            var c = encoder.unkeyedContainer()
            for x in a { try c.encode(x) }
        case .object(let o):
            var c = encoder.container(keyedBy: JSONKey.self)
            for k in o.keys.sorted() { try c.encode(o[k]!, forKey: JSONKey(k)) }
        }
    }
}
