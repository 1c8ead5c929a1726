#if canImport(Glibc)
import Glibc
#endif

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
