/// Where the words of an event come from. The store does not know the event catalogue (a concept record's payload
/// is opaque to it), so whoever opens the store says how to find the text fields of a record: `strings` calls
/// `emit` with the UTF-8 bytes of each string field value of a record of type `typeCode` with `payload`, and must
/// not trap on any bytes (a damaged record is indexed from whatever it yields). The store tokenizes what it is given
/// (`TextTokens`) and indexes the words per segment (docs/FORMAT.md, "Words").
///
/// `scheme` names the extractor and its version (0 is reserved for "no words"). It is written into every index
/// file; a file written under another scheme, or without words, is rebuilt from its segment when a store that
/// indexes text opens it, so words never come from two different readings of the same payload.
public struct TextIndexing: Sendable {
    public var scheme: UInt32
    public var strings: @Sendable (_ typeCode: UInt16, _ payload: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) -> Void

    public init(
        scheme: UInt32,
        strings: @escaping @Sendable (_ typeCode: UInt16, _ payload: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) -> Void
    ) {
        precondition(scheme != 0, "text scheme 0 means no words")
        self.scheme = scheme
        self.strings = strings
    }

    /// Every word hash of a record's text, each once, in ascending order. Every hash is collected, then sorted and
    /// its adjacent repeats dropped: O(w log w) for a record of w words, however many of them are distinct.
    func wordHashes(typeCode: UInt16, payload: UnsafeRawBufferPointer, into out: inout [UInt64], scratch: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        strings(typeCode, payload) { text in
            TextTokens.forEachWord(text, scratch: &scratch) { out.append(TextTokens.hash($0)) }
        }
        guard out.count > 1 else { return }
        out.sort()
        var kept = 1
        for i in 1..<out.count where out[i] != out[kept - 1] {
            out[kept] = out[i]
            kept += 1
        }
        out.removeLast(out.count - kept)
    }
}

/// The tokenizer of the word index (docs/FORMAT.md, "Words"). A word is a maximal run of word characters in one
/// string field value: ASCII letters and digits, and the non-ASCII Unicode scalars that are alphabetic, numeric
/// or combining marks (`Unicode.Scalar.Properties.isAlphabetic`, `numericType`, general category M: so a
/// decomposed accent, or the dot of `İ` folded to `i̇`, stays inside its word). Everything else separates words (spaces,
/// punctuation, `-`, `_`, `/`, `.`, `:`, invalid UTF-8). Words are case-folded: ASCII `A-Z` to `a-z`, other scalars
/// through their Unicode lowercase mapping. A word is indexed by the XXH3-64 of its folded UTF-8 bytes; a word
/// longer than `maxIndexedBytes` is indexed by its first `maxIndexedBytes` bytes, so a search for it finds every
/// word sharing that start, and the check on the event itself keeps only the whole word.
public enum TextTokens {
    /// Bytes of a folded word that its index entry tells apart.
    public static let maxIndexedBytes = 64

    /// ASCII letters and digits.
    @inline(__always) static func isASCIIWord(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A)
    }

    /// Calls `body` with each folded word of `text` (UTF-8), in order. `scratch` holds the word being built (its
    /// bytes are valid only during the call).
    public static func forEachWord(_ text: UnsafeRawBufferPointer, scratch: inout [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) {
        scratch.removeAll(keepingCapacity: true)
        var i = 0
        let n = text.count
        func flush(_ scratch: inout [UInt8]) {
            if scratch.isEmpty { return }
            scratch.withUnsafeBytes { body($0) }
            scratch.removeAll(keepingCapacity: true)
        }
        while i < n {
            let b = text[i]
            if b < 0x80 {
                if isASCIIWord(b) {
                    scratch.append(b >= 0x41 && b <= 0x5A ? b | 0x20 : b)
                } else {
                    flush(&scratch)
                }
                i += 1
                continue
            }
            guard let (scalar, length) = decodeScalar(text, at: i) else {
                flush(&scratch)
                i += 1
                continue
            }
            i += length
            let p = scalar.properties
            if isWordScalar(p) {
                if p.changesWhenLowercased {
                    scratch.append(contentsOf: p.lowercaseMapping.utf8)
                } else {
                    UTF8.encode(scalar) { scratch.append($0) }
                }
            } else {
                flush(&scratch)
            }
        }
        flush(&scratch)
    }

    /// Whether a non-ASCII scalar is a word character: alphabetic, numeric, or a combining mark.
    @inline(__always) static func isWordScalar(_ p: Unicode.Scalar.Properties) -> Bool {
        if p.isAlphabetic || p.numericType != nil { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// The folded words of a string.
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var scratch: [UInt8] = []
        var s = text
        s.withUTF8 { buf in
            forEachWord(UnsafeRawBufferPointer(buf), scratch: &scratch) { out.append(String(decoding: $0, as: UTF8.self)) }
        }
        return out
    }

    /// The index hash of a folded word: XXH3-64 of its first `maxIndexedBytes` bytes.
    @inline(__always) public static func hash(_ word: UnsafeRawBufferPointer) -> UInt64 {
        Hash.bytes(word.count <= maxIndexedBytes ? word : UnsafeRawBufferPointer(rebasing: word[0..<maxIndexedBytes]))
    }

    /// The index hash of a folded word given as a string.
    public static func hash(_ word: String) -> UInt64 {
        var s = word
        return s.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// The scalar starting at `at` and its length in bytes; nil for bytes that are not well-formed UTF-8 there
    /// (overlong forms, surrogates and values above U+10FFFF included).
    static func decodeScalar(_ t: UnsafeRawBufferPointer, at: Int) -> (Unicode.Scalar, Int)? {
        let b0 = t[at]
        let length: Int
        var v: UInt32
        switch b0 {
        case 0xC2...0xDF: length = 2; v = UInt32(b0 & 0x1F)
        case 0xE0...0xEF: length = 3; v = UInt32(b0 & 0x0F)
        case 0xF0...0xF4: length = 4; v = UInt32(b0 & 0x07)
        default: return nil
        }
        guard at + length <= t.count else { return nil }
        for k in 1..<length {
            let c = t[at + k]
            guard c & 0xC0 == 0x80 else { return nil }
            v = v << 6 | UInt32(c & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
        guard v >= minimum, let scalar = Unicode.Scalar(v) else { return nil }
        return (scalar, length)
    }
}

/// A text search: words that must all appear in an event's string fields (any field each), and phrases whose words
/// must appear in order, one after another, inside one field value. Parsed from what a user types: words, and
/// phrases in double quotes (`disk full "connection refused"`); an unclosed quote runs to the end.
public struct TextQuery: Sendable, Equatable, CustomStringConvertible {
    /// Every folded word the query needs, each once (the words of its phrases included).
    public let words: [String]
    /// Quoted phrases of two or more words, folded.
    public let phrases: [[String]]
    /// What was typed.
    public let text: String
    /// `words` and `phrases` as UTF-8 bytes, made once for `matches`.
    private let wordBytes: Set<[UInt8]>
    private let phraseBytes: [[[UInt8]]]

    /// Parses `text`; nil when it has no word at all (only punctuation or spaces).
    public init?(_ text: String) {
        var words: [String] = []
        var phrases: [[String]] = []
        let parts = text.split(separator: "\"", omittingEmptySubsequences: false)
        for (k, part) in parts.enumerated() {
            let w = TextTokens.words(String(part))
            for word in w where !words.contains(where: { $0.utf8.elementsEqual(word.utf8) }) { words.append(word) }
            if k % 2 == 1, w.count >= 2 { phrases.append(w) }
        }
        guard !words.isEmpty else { return nil }
        self.words = words
        self.phrases = phrases
        self.text = text
        wordBytes = Set(words.map { Array($0.utf8) })
        phraseBytes = phrases.map { $0.map { Array($0.utf8) } }
    }

    public var description: String { text }

    /// The index hashes of the words.
    public var wordHashes: [UInt64] { words.map { TextTokens.hash($0) } }

    /// Whether the text fields `strings` yields (each string field value's UTF-8 bytes) hold every word and every
    /// phrase. Compares whole words, not hashes.
    public func matches(_ strings: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool {
        // Words compare as bytes (Swift strings would compare canonically equivalent forms as equal, which the
        // index, hashing bytes, does not).
        var missing = wordBytes
        var phrasesLeft = phraseBytes
        var scratch: [UInt8] = []
        var fieldWords: [[UInt8]] = []
        strings { text in
            if missing.isEmpty && phrasesLeft.isEmpty { return }
            fieldWords.removeAll(keepingCapacity: true)
            TextTokens.forEachWord(text, scratch: &scratch) { fieldWords.append(Array($0)) }
            for w in fieldWords where !missing.isEmpty { missing.remove(w) }
            if !phrasesLeft.isEmpty {
                phrasesLeft.removeAll { TextQuery.contains(fieldWords, run: $0) }
            }
        }
        return missing.isEmpty && phrasesLeft.isEmpty
    }

    /// Whether `words` holds `run` as consecutive elements.
    static func contains(_ words: [[UInt8]], run: [[UInt8]]) -> Bool {
        guard run.count <= words.count, let first = run.first else { return run.isEmpty }
        var i = 0
        while i + run.count <= words.count {
            if words[i] == first, words[(i + 1)..<(i + run.count)].elementsEqual(run[1...]) { return true }
            i += 1
        }
        return false
    }
}
