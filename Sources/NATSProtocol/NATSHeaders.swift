/// The header block of an HPUB/HMSG: a version line `NATS/1.0`, an optional status code and description (servers
/// use them for no-responders 503 and for JetStream pull status 404/408/409/100), then `Name: value` lines.
/// Names keep their case; lookups ignore ASCII case. Several values per name are kept in order.
public struct NATSHeaders: Equatable, Sendable, CustomStringConvertible {
    /// `name: value` pairs in order.
    public private(set) var fields: [(name: String, value: String)] = []
    /// The status code of the version line (for example 404), when the server sent one.
    public var status: Int?
    /// The text after the status code, when any (for example `No Messages`).
    public var statusDescription: String?

    public init(_ fields: [(String, String)] = [], status: Int? = nil, statusDescription: String? = nil) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
        self.status = status
        self.statusDescription = statusDescription
    }

    public static func == (a: NATSHeaders, b: NATSHeaders) -> Bool {
        a.status == b.status && a.statusDescription == b.statusDescription && a.fields.count == b.fields.count
            && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first value for `name` (ASCII case ignored).
    public subscript(name: String) -> String? {
        get {
            let key = name.lowercased()
            return fields.first { $0.name.lowercased() == key }?.value
        }
        set {
            let key = name.lowercased()
            fields.removeAll { $0.name.lowercased() == key }
            if let newValue { fields.append((name: name, value: newValue)) }
        }
    }

    /// Every value for `name` (ASCII case ignored), in order.
    public func values(_ name: String) -> [String] {
        let key = name.lowercased()
        return fields.filter { $0.name.lowercased() == key }.map(\.value)
    }

    /// Adds a value without removing earlier ones.
    public mutating func append(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    public var isEmpty: Bool { fields.isEmpty && status == nil }

    public var description: String {
        var s = "NATS/1.0"
        if let status { s += " \(status)" }
        if let statusDescription { s += " " + statusDescription }
        for f in fields { s += "; \(f.name): \(f.value)" }
        return s
    }

    /// Checks that every name and value can be sent: names are 1-256 printable ASCII bytes without `:`, values hold
    /// no CR or LF.
    public func validate() throws(NATSProtocolError) {
        for f in fields {
            if f.name.isEmpty || f.name.utf8.count > 256 { throw .invalidHeader("name must be 1-256 bytes") }
            if f.name.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: ":") }) {
                throw .invalidHeader("name \"\(f.name)\" holds a space, a colon or a control byte")
            }
            if f.value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                throw .invalidHeader("value of \(f.name) holds CR or LF")
            }
        }
        if let d = statusDescription, d.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
            throw .invalidHeader("status description holds CR or LF")
        }
        if let s = status, !(100...999).contains(s) { throw .invalidHeader("status \(s) is not three digits") }
    }

    /// The wire form, ending with the blank line (CRLF CRLF).
    public func encoded() -> [UInt8] {
        var out = Array("NATS/1.0".utf8)
        if let status {
            out.append(0x20)
            out += Array(String(status).utf8)
            if let statusDescription, !statusDescription.isEmpty {
                out.append(0x20)
                out += Array(statusDescription.utf8)
            }
        }
        out += [13, 10]
        for f in fields {
            out += Array(f.name.utf8)
            out += [UInt8(ascii: ":"), 0x20]
            out += Array(f.value.utf8)
            out += [13, 10]
        }
        out += [13, 10]
        return out
    }

    /// Parses a header block (the first `headerLength` bytes of an HMSG payload).
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(NATSProtocolError) -> NATSHeaders {
        var lines: [ArraySlice<UInt8>] = []
        var i = bytes.startIndex
        var lineStart = i
        while i < bytes.endIndex {
            if bytes[i] == 13 {
                guard i + 1 < bytes.endIndex, bytes[i + 1] == 10 else { throw .malformedHeaders("CR without LF") }
                lines.append(bytes[lineStart..<i])
                i += 2
                lineStart = i
            } else if bytes[i] == 10 {
                throw .malformedHeaders("LF without CR")
            } else {
                i += 1
            }
        }
        guard lineStart == bytes.endIndex else { throw .malformedHeaders("block does not end with CRLF") }
        guard lines.count >= 2, lines.last!.isEmpty else { throw .malformedHeaders("block does not end with a blank line") }
        let version = lines[0]
        let prefix = Array("NATS/1.0".utf8)
        guard version.count >= prefix.count, Array(version.prefix(prefix.count)) == prefix else {
            throw .malformedHeaders("version line is not NATS/1.0")
        }
        var headers = NATSHeaders()
        let rest = version.dropFirst(prefix.count)
        if !rest.isEmpty {
            guard rest.first == 0x20 else { throw .malformedHeaders("version line is not NATS/1.0") }
            let text = rest.dropFirst().drop { $0 == 0x20 }
            let code = text.prefix { $0 != 0x20 }
            if !code.isEmpty {
                guard code.count == 3, code.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw .malformedHeaders("status is not three digits")
                }
                // A leading zero (`044`) would not survive a round trip and is no HTTP-style status.
                guard code.first != 0x30 else { throw .malformedHeaders("status \(String(decoding: code, as: UTF8.self)) is not 100-999") }
                headers.status = Int(String(decoding: code, as: UTF8.self))
                let desc = text.dropFirst(code.count).drop { $0 == 0x20 }
                if !desc.isEmpty { headers.statusDescription = String(decoding: desc, as: UTF8.self) }
            }
        }
        for line in lines[1..<(lines.count - 1)] {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw .malformedHeaders("line without a name and a colon")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            let value = line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
            headers.fields.append((name: name, value: String(decoding: value, as: UTF8.self)))
        }
        return headers
    }
}
