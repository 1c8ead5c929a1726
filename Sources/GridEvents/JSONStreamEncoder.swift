/// An `Encoder` that writes JSON straight into a `JSONWriter`, keys in the order they are encoded (a synthesized
/// `encode(to:)` encodes the properties in declaration order), numbers as `JSONWriter` prints them (integers as
/// integers, doubles by `JSONWriter.number`), strings escaped by `JSONWriter.string`.
///
/// Foundation's `JSONEncoder` builds a tree first and, on Linux, does not keep the order of keys; this one writes as
/// it goes: a container's bracket opens when the container is made and closes once the value that made it has
/// returned from `encode(to:)` (or, for a nested container, when its parent moves on to its next key or element).
///
/// Values that already know their JSON (`JSONStreamWritable`: `RawJSON`, `JSONTime`, an event's API form) are
/// written by their own writer. `nil` follows `Codable`: a synthesized optional property whose value is nil is
/// left out (`encodeIfPresent`); mark it `@Nullable` (or encode the optional with `encode(_:forKey:)`) to write
/// `null` instead.
///
/// A nested container (`nestedContainer(keyedBy:forKey:)`) is written in place: fill it before its parent's next
/// member. `codingPath` is kept for the encoded types that read it; errors are those the encoded values throw.
public struct JSONStreamEncoder: Sendable {
    public init() {}

    /// Appends the JSON of `value` to `writer`.
    public func encode<T: Encodable>(_ value: T, into writer: inout JSONWriter) throws {
        // The state lives in memory of its own (not a class's properties, whose every write the runtime checks
        // for exclusive access) and holds the only reference to the text while encoding (no copy on append).
        let state = UnsafeMutablePointer<StreamState>.allocate(capacity: 1)
        state.initialize(to: StreamState(writer: writer))
        writer = JSONWriter(reserving: 0)
        defer {
            writer = state.pointee.writer
            state.deinitialize(count: 1)
            state.deallocate()
        }
        try state.encodeValue(value)
    }

    /// The JSON text of `value`.
    public func encode<T: Encodable>(_ value: T) throws -> String {
        var w = JSONWriter()
        try encode(value, into: &w)
        return w.text
    }
}

// MARK: The encoder's state

/// The text written so far, the containers still open (innermost last) and the keys from the root to the value
/// being encoded. Encoders and containers are values that point here; a container is open while its frame is on
/// `open`.
private struct StreamState {
    struct Frame {
        var closer: String
        var count = 0
    }

    var writer: JSONWriter
    var open: [Frame] = []
    var keys: [any CodingKey] = []
    /// Whether each type met is `JSONStreamWritable` (asking the runtime costs more than looking here: an answer
    /// has a handful of types).
    var writable: [(type: ObjectIdentifier, as: (any JSONStreamWritable.Type)?)] = []

    init(writer: JSONWriter) { self.writer = writer }
}

/// An element's key in `codingPath`.
private struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

private typealias State = UnsafeMutablePointer<StreamState>

extension UnsafeMutablePointer where Pointee == StreamState {
    /// Closes every container opened at `level` or deeper.
    fileprivate func close(from level: Int) {
        while pointee.open.count > level { pointee.writer.raw(pointee.open.removeLast().closer) }
    }

    /// Opens a container: its bracket now, its closer later.
    fileprivate func push(_ opener: String, _ closer: String) -> Int {
        pointee.writer.raw(opener)
        pointee.open.append(StreamState.Frame(closer: closer))
        return pointee.open.count - 1
    }

    /// Starts the next member of the container at `level`: closes what its previous member left open, then writes
    /// the comma.
    fileprivate func next(at level: Int) {
        close(from: level + 1)
        if pointee.open[level].count > 0 { pointee.writer.raw(",") }
        pointee.open[level].count += 1
    }

    /// The path of a value at `depth`.
    fileprivate func path(_ depth: Int) -> [any CodingKey] { Array(pointee.keys.prefix(depth)) }

    /// Writes `value` under `key` (nil: the root, or a single value's own).
    fileprivate func encodeValue<T: Encodable>(_ value: T, key: (any CodingKey)? = nil) throws {
        // The common leaves without a trip through `encode(to:)`, by type identity (no conformance lookup).
        if T.self == String.self { return write(Self.reinterpret(value, as: String.self)) }
        if T.self == Int.self { return write(Self.reinterpret(value, as: Int.self)) }
        if T.self == JSONTime.self { return pointee.writer.time(Self.reinterpret(value, as: JSONTime.self).micros) }
        if T.self == Nullable<String>.self { return write(Self.reinterpret(value, as: Nullable<String>.self).wrappedValue) }
        if T.self == Nullable<Int>.self { return write(Self.reinterpret(value, as: Nullable<Int>.self).wrappedValue) }
        if T.self == Nullable<JSONTime>.self { return write(Self.reinterpret(value, as: Nullable<JSONTime>.self).wrappedValue) }
        if T.self == String?.self { return write(Self.reinterpret(value, as: String?.self)) }
        if T.self == Int?.self { return write(Self.reinterpret(value, as: Int?.self)) }
        let id = ObjectIdentifier(T.self)
        let writable: (any JSONStreamWritable.Type)?
        if let known = pointee.writable.first(where: { $0.type == id }) {
            writable = known.as
        } else {
            writable = T.self as? any JSONStreamWritable.Type
            pointee.writable.append((id, writable))
        }
        if let writable {
            func write<W: JSONStreamWritable>(_ type: W.Type) { Self.reinterpret(value, as: W.self).writeJSON(into: &pointee.writer) }
            return write(writable)
        }
        if let key { pointee.keys.append(key) }
        defer { if key != nil { pointee.keys.removeLast() } }
        let mark = pointee.open.count
        let before = pointee.writer.bytes.count
        try value.encode(to: StreamEncoder(state: self, mark: mark, depth: pointee.keys.count))
        close(from: mark)
        // A value that encoded nothing at all: an empty object, as JSONEncoder writes it.
        if pointee.writer.bytes.count == before { pointee.writer.raw("{}") }
    }

    /// `value`, whose type is `type` (checked by the caller).
    private static func reinterpret<T, U>(_ value: T, as type: U.Type) -> U {
        withUnsafePointer(to: value) { UnsafeRawPointer($0).load(as: U.self) }
    }

    fileprivate func null() { pointee.writer.raw("null") }
    fileprivate func write(_ v: String?) { if let v { write(v) } else { null() } }
    fileprivate func write(_ v: Int?) { if let v { write(v) } else { null() } }
    fileprivate func write(_ v: JSONTime?) { if let v { pointee.writer.time(v.micros) } else { null() } }
    fileprivate func write(_ v: Bool) { pointee.writer.raw(v ? "true" : "false") }
    fileprivate func write(_ v: String) { pointee.writer.string(v) }
    fileprivate func write(_ v: Double) { pointee.writer.number(v) }
    fileprivate func write(_ v: Int) { pointee.writer.raw(String(v)) }
    fileprivate func write(_ v: Int64) { pointee.writer.raw(String(v)) }
    fileprivate func write(_ v: UInt64) { pointee.writer.raw(String(v)) }
}

private struct StreamEncoder: Encoder {
    let state: State
    /// How many containers were open when this value began: its own container is the one at `mark`.
    let mark: Int
    /// How many keys lead to this value.
    let depth: Int
    var codingPath: [any CodingKey] { state.path(depth) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The value's container at `mark`, reused when the value asks again (as `Codable` allows), else opened.
    private func level(_ opener: String, _ closer: String) -> Int {
        if state.pointee.open.count > mark, state.pointee.open[mark].closer == closer {
            state.close(from: mark + 1)
            return mark
        }
        state.close(from: mark)
        return state.push(opener, closer)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedStream<Key>(state: state, level: level("{", "}"), depth: depth))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedStream(state: state, level: level("[", "]"), depth: depth)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleStream(state: state, depth: depth)
    }
}

private struct KeyedStream<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let state: State
    let level: Int
    let depth: Int
    var codingPath: [any CodingKey] { state.path(depth) }

    private func key(_ key: Key) {
        state.close(from: level + 1)
        state.pointee.writer.member(key.stringValue, first: state.pointee.open[level].count == 0)
        state.pointee.open[level].count += 1
    }

    mutating func encodeNil(forKey k: Key) throws { key(k); state.null() }
    mutating func encode(_ v: Bool, forKey k: Key) throws { key(k); state.write(v) }
    mutating func encode(_ v: String, forKey k: Key) throws { key(k); state.write(v) }
    mutating func encode(_ v: Double, forKey k: Key) throws { key(k); state.write(v) }
    mutating func encode(_ v: Float, forKey k: Key) throws { key(k); state.write(Double(v)) }
    mutating func encode(_ v: Int, forKey k: Key) throws { key(k); state.write(v) }
    mutating func encode(_ v: Int8, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: Int16, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: Int32, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: Int64, forKey k: Key) throws { key(k); state.write(v) }
    mutating func encode(_ v: UInt, forKey k: Key) throws { key(k); state.write(UInt64(v)) }
    mutating func encode(_ v: UInt8, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: UInt16, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: UInt32, forKey k: Key) throws { key(k); state.write(Int(v)) }
    mutating func encode(_ v: UInt64, forKey k: Key) throws { key(k); state.write(v) }

    mutating func encode<T: Encodable>(_ v: T, forKey k: Key) throws {
        key(k)
        try state.encodeValue(v, key: k)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey k: Key) -> KeyedEncodingContainer<NestedKey> {
        key(k)
        return KeyedEncodingContainer(KeyedStream<NestedKey>(state: state, level: state.push("{", "}"), depth: depth))
    }

    mutating func nestedUnkeyedContainer(forKey k: Key) -> any UnkeyedEncodingContainer {
        key(k)
        return UnkeyedStream(state: state, level: state.push("[", "]"), depth: depth)
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey k: Key) -> any Encoder {
        key(k)
        state.null()  // replaced by whatever the super encoder writes: see `SuperStream`
        return SuperStream(state: state, mark: state.pointee.open.count, depth: depth)
    }
}

/// A member's encoder that writes at most one value in place of the `null` written for it; unused, the member
/// stays `null`.
private struct SuperStream: Encoder {
    let state: State
    let mark: Int
    let depth: Int
    var codingPath: [any CodingKey] { state.path(depth) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    private func replace() -> StreamEncoder {
        if state.pointee.open.count == mark, state.pointee.writer.bytes.suffix(4).elementsEqual("null".utf8) { state.pointee.writer.dropLast(4) }
        return StreamEncoder(state: state, mark: mark, depth: depth)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { replace().container(keyedBy: type) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { replace().unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { replace().singleValueContainer() }
}

private struct UnkeyedStream: UnkeyedEncodingContainer {
    let state: State
    let level: Int
    let depth: Int
    var codingPath: [any CodingKey] { state.path(depth) }
    var count: Int { state.pointee.open.count > level ? state.pointee.open[level].count : 0 }

    private func element() { state.next(at: level) }

    mutating func encodeNil() throws { element(); state.null() }
    mutating func encode(_ v: Bool) throws { element(); state.write(v) }
    mutating func encode(_ v: String) throws { element(); state.write(v) }
    mutating func encode(_ v: Double) throws { element(); state.write(v) }
    mutating func encode(_ v: Float) throws { element(); state.write(Double(v)) }
    mutating func encode(_ v: Int) throws { element(); state.write(v) }
    mutating func encode(_ v: Int8) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: Int16) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: Int32) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: Int64) throws { element(); state.write(v) }
    mutating func encode(_ v: UInt) throws { element(); state.write(UInt64(v)) }
    mutating func encode(_ v: UInt8) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: UInt16) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: UInt32) throws { element(); state.write(Int(v)) }
    mutating func encode(_ v: UInt64) throws { element(); state.write(v) }

    mutating func encode<T: Encodable>(_ v: T) throws {
        let index = count
        element()
        try state.encodeValue(v, key: IndexKey(index))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        element()
        return KeyedEncodingContainer(KeyedStream<NestedKey>(state: state, level: state.push("{", "}"), depth: depth))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        element()
        return UnkeyedStream(state: state, level: state.push("[", "]"), depth: depth)
    }

    mutating func superEncoder() -> any Encoder {
        element()
        state.null()
        return SuperStream(state: state, mark: state.pointee.open.count, depth: depth)
    }
}

private struct SingleStream: SingleValueEncodingContainer {
    let state: State
    let depth: Int
    var codingPath: [any CodingKey] { state.path(depth) }

    mutating func encodeNil() throws { state.null() }
    mutating func encode(_ v: Bool) throws { state.write(v) }
    mutating func encode(_ v: String) throws { state.write(v) }
    mutating func encode(_ v: Double) throws { state.write(v) }
    mutating func encode(_ v: Float) throws { state.write(Double(v)) }
    mutating func encode(_ v: Int) throws { state.write(v) }
    mutating func encode(_ v: Int8) throws { state.write(Int(v)) }
    mutating func encode(_ v: Int16) throws { state.write(Int(v)) }
    mutating func encode(_ v: Int32) throws { state.write(Int(v)) }
    mutating func encode(_ v: Int64) throws { state.write(v) }
    mutating func encode(_ v: UInt) throws { state.write(UInt64(v)) }
    mutating func encode(_ v: UInt8) throws { state.write(Int(v)) }
    mutating func encode(_ v: UInt16) throws { state.write(Int(v)) }
    mutating func encode(_ v: UInt32) throws { state.write(Int(v)) }
    mutating func encode(_ v: UInt64) throws { state.write(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try state.encodeValue(v) }
}
