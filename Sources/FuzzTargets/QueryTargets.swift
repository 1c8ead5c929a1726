import EventQuery
import EventStore
import GridEvents
import GridFixtures

/// A small store of generated events (one per process), for the targets that run what they parse.
final class SampleStore: @unchecked Sendable {
    static let shared = SampleStore()
    /// 2025-11-29T00:00:00Z; the events span that day.
    static let dayStart: Int64 = 1_764_374_400_000_000
    let store: EventStore
    let engine: QueryEngine

    private init() {
        let dir = Scratch.fresh("sample-store")
        do {
            store = try EventStore.open(at: dir, options: GridText.options(StoreOptions(durability: .none, segmentCapacity: 256 << 10)))
            var grid = SampleGrid(seed: 7, agents: 6, nodes: 20, start: SampleStore.dayStart, span: 86_400_000_000)
            let events = grid.events(400) + SampleGrid.oneOfEach(timestamp: SampleStore.dayStart + 3_600_000_000)
            for chunk in stride(from: 0, to: events.count, by: 50) {
                _ = try store.append(events[chunk..<min(chunk + 50, events.count)].flatMap { $0.records() })
            }
        } catch {
            fatalError("cannot build the sample store: \(error)")
        }
        engine = QueryEngine(store: store)
    }
}

extension FuzzTargets {
    /// The clock the question target runs at: 2025-11-29T18:30:00Z, inside the sample store's day.
    static let questionNow: Int64 = SampleStore.dayStart + 66_600_000_000

    /// Plain-English questions through `Translator.interpret`, then answered by the query engine over a small
    /// sample store. Invariants: failures are `TranslationError`s with suggestions; an interpretation has a
    /// sentence, a limit the engine accepts and a non-inverted time range, and the engine answers it.
    public static let questions = FuzzTarget(name: "questions", maxLength: 600, run: { bytes in
        let question = String(decoding: bytes, as: UTF8.self)
        let translator = Translator(now: { FuzzTargets.questionNow })
        let interpretation: Interpretation
        do throws(TranslationError) {
            interpretation = try translator.interpret(question)
        } catch {
            check(!error.message.isEmpty && !error.suggestions.isEmpty, "a translation error without message or suggestions")
            return
        }
        let q = interpretation.query
        check(!interpretation.sentence.isEmpty, "an interpretation without a sentence")
        check((1...QueryEngine.maxLimit).contains(q.limit), "interpreted limit \(q.limit)")
        if let s = q.since, let u = q.until { check(s <= u, "interpreted since \(s) after until \(u)") }
        do {
            let answer = try SampleStore.shared.engine.answer(interpretation)
            if case .events(let page) = answer { checkPage(page, q) }
        } catch {
            fatalError("the engine refuses an interpretation of \"\(question)\": \(error)")
        }
    }, seeds: {
        (Translator.examples + [
            "count spawn failures between 09:00 and 17:30", "what happened to node-7 yesterday",
            "show custom deploy_finished events in the past 3 hours", "how many agents went offline since yesterday",
            "events before node-7 crash", "top 3 nodes by crashes last week",
        ]).map { Array($0.utf8) }
    })

    /// HTTP query parameters of `GET /api/events` (`type`, `entity`, `since`, `until`, `prefix`, `limit`, `cursor`,
    /// `order`) through `QueryParameters.structuredQuery`, then the engine's `find` over the sample store, following
    /// the next cursor once; `depth`/`limit` of the graph route too. The input is a query string, split and
    /// percent-decoded here as the HTTP server does (first value of a name wins).
    /// Invariants: bad parameters are `ParameterError`s and bad cursors `QueryError`s; a page holds at most `limit`
    /// events, in order, each matching the filters; the next page starts after the last event.
    public static let httpQuery = FuzzTarget(name: "http-query", maxLength: 2048, run: { bytes in
        let parameters = queryParameters(String(decoding: bytes, as: UTF8.self))
        let get: QueryParameters.Lookup = { name in parameters.first { $0.0 == name }?.1 }
        let engine = SampleStore.shared.engine
        if let id = try? QueryParameters.string(get, "id"),
            let depth = try? QueryParameters.int(get, "depth", default: 1, range: 1...4)
        {
            check((try? engine.neighbors(of: id, depth: depth, limit: 200)) != nil, "neighbors refuses valid parameters")
        }
        let query: EventQuery
        do throws(ParameterError) {
            query = try QueryParameters.structuredQuery(get)
        } catch {
            check(error.code.hasPrefix("bad_") || error.code == "unknown_type", "parameter error code \(error.code)")
            return
        }
        let page: QueryPage
        do throws(QueryError) {
            page = try engine.find(query)
        } catch {
            check(error.code == .badCursor && query.cursor != nil, "find refuses a parsed query: \(error)")
            return
        }
        checkPage(page, query)
        guard let cursor = page.nextCursor, let last = page.positions.last else { return }
        var next = query
        next.cursor = cursor
        guard let following = try? engine.find(next) else { fatalError("find refuses its own cursor \(cursor)") }
        checkPage(following, next)
        if let first = following.positions.first {
            check(query.newestFirst ? first < last : last < first, "next page starts at \(first), not after \(last)")
        }
    }, seeds: {
        [
            "", "limit=5", "type=spawn_failed,agent_heartbeat&limit=3&order=oldest",
            "entity=agent-001&since=2025-11-29T00:00:00Z&until=2025-11-29T12:00:00.5Z",
            "prefix=event-spawn_*&limit=2", "type=custom&order=newest",
            "cursor=c1000000000000000000000000000000ff&limit=1", "id=agent-001&depth=2",
            "entity=node%2D7&limit=1000", "since=2025-11-29T10:00:00%2B02:00&limit=abc",
            "text=disk%20full", "text=%22out+of+memory%22&type=spawn_failed&limit=2", "text=agent&entity=agent-001&limit=3&order=oldest",
        ].map { Array($0.utf8) }
    })

    /// The events of a page are at most `limit`, in query order, and match its filters.
    static func checkPage(_ page: QueryPage, _ q: EventQuery) {
        check(page.events.count <= q.limit && page.positions.count <= q.limit, "page of \(page.positions.count) > limit \(q.limit)")
        for (a, b) in zip(page.positions, page.positions.dropFirst()) {
            check(q.newestFirst ? b < a : a < b, "page out of order: \(a) then \(b)")
        }
        let lo = q.since ?? .min
        let hi = q.until ?? .max
        for e in page.events {
            check(e.timestamp >= lo && (q.until == nil || e.timestamp < hi), "event at \(e.timestamp) outside \(lo)..<\(hi)")
            if !q.types.isEmpty { check(q.types.contains(e.type), "event of type \(e.typeName) outside \(q.types)") }
            if let entity = q.entity { check(e.entities.contains(entity), "event \(e.id) does not mention \(entity)") }
            if let p = q.idPrefix {
                let stem = p.hasSuffix("*") ? String(p.dropLast()) : p
                check(e.id.hasPrefix(stem), "event \(e.id) does not start with \(stem)")
            }
            if let text = q.text {
                let strings = GridText.strings(of: e)
                let ok = TextQuery(text)?.matches { body in for s in strings { var s = s; s.withUTF8 { body(UnsafeRawBufferPointer($0)) } } }
                check(ok == true, "event \(e.id) does not hold the text \(text)")
            }
        }
    }

    /// Splits a URL query string into percent-decoded (name, value) pairs, `+` as a space, as HTTP servers do.
    static func queryParameters(_ query: String) -> [(String, String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (percentDecode(pieces[0]), pieces.count > 1 ? percentDecode(pieces[1]) : "")
        }
    }

    static func percentDecode(_ s: Substring) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(b[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
