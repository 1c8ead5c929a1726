import Foundation
import GridEvents
import Testing

private struct Point: Encodable, Equatable {
    var x: Int
    var y: Double
}

private struct Shape: Encodable {
    var name: String
    var points: [Point]
    var tags: [String]
    var closed: Bool
    var origin: Point?
    @Nullable var label: String?
    @Nullable var centre: Point?
    var at: JSONTime
    var extra: RawJSON
    var counts: JSONObject<Int>
}

/// Encodes with a nested keyed container, a nested unkeyed one, and a member after them.
private struct Nested: Encodable {
    enum Keys: String, CodingKey { case a, inner, list, z }
    enum InnerKeys: String, CodingKey { case b, c }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(1, forKey: .a)
        var inner = c.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner)
        try inner.encode("x", forKey: .b)
        var list = c.nestedUnkeyedContainer(forKey: .list)
        try list.encode(UInt8(7))
        try list.encodeNil()
        var deeper = list.nestedContainer(keyedBy: InnerKeys.self)
        try deeper.encode(false, forKey: .c)
        try list.encode(Int64.min)
        try c.encode(-3, forKey: .z)
    }
}

/// Asks for its container twice, as `Codable` allows: one object.
private struct Twice: Encodable {
    enum Keys: String, CodingKey { case a, b }
    func encode(to encoder: any Encoder) throws {
        var c1 = encoder.container(keyedBy: Keys.self)
        try c1.encode(1, forKey: .a)
        var c2 = encoder.container(keyedBy: Keys.self)
        try c2.encode(2, forKey: .b)
    }
}

private struct Empty: Encodable {
    func encode(to encoder: any Encoder) throws {}
}

private struct WithSuper: Encodable {
    enum Keys: String, CodingKey { case own, `super`, after }
    var writesSuper: Bool
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode("o", forKey: .own)
        let s = c.superEncoder()
        if writesSuper { try Point(x: 1, y: 2).encode(to: s) }
        try c.encode("a", forKey: .after)
    }
}

@Suite("JSONStreamEncoder")
struct JSONStreamEncoderTests {
    let encoder = JSONStreamEncoder()

    @Test func structsArraysAndOptionalsInDeclarationOrder() throws {
        let shape = Shape(name: "tri", points: [Point(x: 1, y: 0.5), Point(x: -2, y: 3)], tags: [], closed: true,
                          origin: nil, label: nil, centre: Point(x: 0, y: 1e300), at: JSONTime(1_764_374_400_000_001),
                          extra: RawJSON(#"{"k":[1,{"z":null}]}"#), counts: JSONObject([("b", 2), ("a", 1)]))
        #expect(try encoder.encode(shape) == #"{"name":"tri","points":[{"x":1,"y":0.5},{"x":-2,"y":3.0}],"tags":[],"closed":true,"label":null,"centre":{"x":0,"y":1e+300},"at":"2025-11-29T00:00:00.000001Z","extra":{"k":[1,{"z":null}]},"counts":{"b":2,"a":1}}"#)
        var withOrigin = shape
        withOrigin.origin = Point(x: 5, y: -0.25)
        withOrigin.label = "L"
        #expect(try encoder.encode(withOrigin).contains(#""closed":true,"origin":{"x":5,"y":-0.25},"label":"L","centre""#))
    }

    @Test func numbersPrintAsJSONWriterPrintsThem() throws {
        for d in [0.0, 1.0, -1.5, 0.1, 1e15, 1e16, 123_456_789.25, .infinity, .nan, Double.leastNonzeroMagnitude] {
            var w = JSONWriter()
            w.number(d)
            #expect(try encoder.encode(d) == w.text, "\(d)")
        }
        #expect(try encoder.encode([Int.max, Int.min, 0]) == "[\(Int.max),\(Int.min),0]")
        #expect(try encoder.encode(UInt64.max) == "18446744073709551615")
        #expect(try encoder.encode(Float(0.5)) == "0.5")
        #expect(try encoder.encode([true, false]) == "[true,false]")
        #expect(try encoder.encode([Int?.none, 3]) == "[null,3]")
    }

    @Test func stringsAreEscapedAsJSONWriterEscapesThem() throws {
        let s = "<b>\"q\"\\ & \n\t\r\u{0}\u{1f} é ✓ 😀 \u{2028}\u{2029}"
        var w = JSONWriter()
        w.string(s)
        #expect(try encoder.encode(s) == w.text)
        #expect(try encoder.encode([s: s]) == "{\(w.text):\(w.text)}")
        #expect(try encoder.encode(JSONObject([(s, 1)])) == "{\(w.text):1}")
        // What it writes parses back to the same string.
        let parsed = try JSONSerialization.jsonObject(with: Data(try encoder.encode([s]).utf8)) as? [String]
        #expect(parsed == [s])
    }

    @Test func nestedContainersCloseWhenTheirParentMovesOn() throws {
        let text = try encoder.encode(Nested())
        #expect(text == #"{"a":1,"inner":{"b":"x"},"list":[7,null,{"c":false},-9223372036854775808],"z":-3}"#)
        #expect(try encoder.encode([Nested(), Nested()]) == "[\(text),\(text)]")
    }

    @Test func aValueAskingTwiceForItsContainerIsOneObject() throws {
        #expect(try encoder.encode([Twice(), Twice()]) == #"[{"a":1,"b":2},{"a":1,"b":2}]"#)
        #expect(try encoder.encode([Empty()]) == "[{}]")
    }

    @Test func superEncoderWritesInPlaceOrNull() throws {
        #expect(try encoder.encode(WithSuper(writesSuper: true)) == #"{"own":"o","super":{"x":1,"y":2.0},"after":"a"}"#)
        #expect(try encoder.encode(WithSuper(writesSuper: false)) == #"{"own":"o","super":null,"after":"a"}"#)
    }

    @Test func appendsToAWriterAndLeavesWhatWasThere() throws {
        var w = JSONWriter()
        w.raw("[")
        try encoder.encode(Point(x: 1, y: 2), into: &w)
        w.raw(",")
        try encoder.encode(RawJSON(writing: { $0.stringArray(["a"]) }), into: &w)
        w.raw("]")
        #expect(w.text == #"[{"x":1,"y":2.0},["a"]]"#)
    }

    @Test func foreignEncodersGetTheSameValues() throws {
        // The fragments encode as a tree for any other encoder (here Foundation's): the same JSON values.
        let shape = Shape(name: "n", points: [], tags: ["t"], closed: false, origin: nil, label: nil, centre: nil,
                          at: JSONTime(0), extra: RawJSON(#"{"k":[1,"v"],"n":null}"#), counts: JSONObject([("a", 1)]))
        let foundation = try JSONSerialization.jsonObject(with: JSONEncoder().encode(shape)) as? NSDictionary
        let ours = try JSONSerialization.jsonObject(with: Data(try encoder.encode(shape).utf8)) as? NSDictionary
        #expect(foundation != nil && foundation == ours)
    }
}
