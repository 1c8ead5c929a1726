import EventQuery
import EventStore
import GridEvents
import GridFixtures

extension FuzzTargets {
    /// The word tokenizer (`TextTokens`), text queries (`TextQuery`) and the grid events' text extractor
    /// (`GridText.forEachString`) over arbitrary bytes. First byte: a type code for the extractor; the rest is
    /// the text and the payload. Invariants: nothing traps; every word is non-empty, holds no ASCII upper case,
    /// separator or invalid UTF-8; the words of the bytes are the words of the bytes decoded as a Swift string
    /// (invalid sequences separate words either way); tokenizing the words joined by spaces gives them back; a
    /// query typed as the text matches the text as one field; the extractor yields slices of the payload only.
    public static let textTokens = FuzzTarget(name: "text-tokens", maxLength: 4096, run: { bytes in
        var input = InputReader(bytes)
        let typeCode = UInt16(input.u8())
        let rest = input.rest()
        var words: [String] = []
        var scratch: [UInt8] = []
        rest.withUnsafeBytes { buf in
            TextTokens.forEachWord(buf, scratch: &scratch) { w in
                check(!w.isEmpty, "an empty word")
                for b in w where b < 0x80 {
                    check((b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A), "byte \(b) in a word")
                }
                let s = String(validating: w, as: UTF8.self)
                check(s != nil, "a word that is not valid UTF-8")
                words.append(s ?? "")
            }
        }
        let text = String(decoding: rest, as: UTF8.self)
        check(TextTokens.words(text) == words, "the words of the bytes differ from the words of the decoded string")
        check(TextTokens.words(words.joined(separator: " ")) == words, "tokenizing the words again changes them")
        for w in words { _ = TextTokens.hash(w) }
        if let q = TextQuery(text) {
            check(!q.words.isEmpty, "a query without words")
            let ok = rest.withUnsafeBytes { buf in q.matches { body in body(buf) } }
            check(ok, "a query does not match its own text")
        } else {
            check(words.isEmpty, "no query from a text with words")
        }
        rest.withUnsafeBytes { buf in
            let base = buf.baseAddress.map { UInt(bitPattern: $0) } ?? 0
            GridText.forEachString(typeCode: typeCode, payload: buf) { s in
                let at = s.baseAddress.map { UInt(bitPattern: $0) } ?? base
                check(s.isEmpty || (at >= base && at + UInt(s.count) <= base + UInt(buf.count)), "a string outside the payload")
            }
        }
    }, seeds: {
        var seeds: [[UInt8]] = [
            [0] + Array("Disk FULL: /dev/sda1 \"connection refused\" ÜBERGRÖSSE naïve 50051".utf8),
            [0] + Array("\"unclosed phrase words".utf8),
            [0, 0x61, 0xFF, 0x62, 0xC3, 0x63, 0xE2, 0x82, 0x64, 0xF0, 0x9F, 0x98, 0x80, 0x65, 0xED, 0xA0, 0x80, 0xC0, 0xAF],
            [0] + Array(String(repeating: "x", count: 70).utf8),
        ]
        for e in SampleGrid.oneOfEach() {
            seeds.append([UInt8(truncatingIfNeeded: e.type.rawValue)] + BinaryCodec.encodeFields(e.kind))
        }
        return seeds
    })
}
