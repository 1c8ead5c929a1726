import EventStore
import GridEvents

/// What the translator understood a question to mean.
public struct Interpretation: Sendable {
    public enum Action: Sendable, Equatable {
        /// The matching events.
        case list
        /// How many events match, with a breakdown by type.
        case count
        /// How many distinct agents/nodes/entities the matching events mention, with a breakdown.
        case countDistinct(GroupKey)
        /// Counts grouped by a key, largest first, optionally the top N.
        case group(GroupKey, top: Int?)
        /// The events that led to the newest matching event (for its entities).
        case chain
    }

    public var action: Action
    public var query: EventQuery
    /// One sentence saying what will be answered.
    public var sentence: String

    /// The action's name for JSON.
    public var actionName: String {
        switch action {
        case .list: return "list"
        case .count: return "count"
        case .countDistinct: return "count_distinct"
        case .group: return "group"
        case .chain: return "chain"
        }
    }
}

/// A question the translator cannot read, with questions it can.
public struct TranslationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var suggestions: [String]
    public var description: String { message }
}

/// A deterministic translator from operations questions to queries. Grammar (README, "Asking questions"):
///
///     question := [count-words | list-words | "top" N subject "by"] [subject] [type-words] [entity] [text] [time]
///               | ("what happened to" | "history of" | "timeline of") entity [time]
///               | entity ("timeline" | "history")
///               | ("events" | "what happened") ("leading to" | "before") entity [type-word]
///     time     := "today" | "yesterday" | "this week" | "last week" | "this hour"
///               | ("last" | "past") [N] ("minute" | "hour" | "day" | "week")["s"]
///               | "since" HH:MM | "since yesterday" | "between" HH:MM "and" HH:MM
///     text     := ["that" | "which"] ("mentioning" | "mention"["s"] | "containing" | "contain"["s"] | "saying"
///                 | "matching") words | failure-word "with" words     (words: to the end, or "for" entity;
///                 "quoted" words stay a phrase; see `extractText`)
///
/// Times are UTC and relative to `now`, which tests fix.
public struct Translator: Sendable {
    public var now: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64 = { GridClock.nowMicros() }) {
        self.now = now
    }

    public static let examples = [
        "show spawn failures today", "spawn events today", "count spawn failures this week",
        "what happened to agent-001", "agent-001 timeline", "what's the crash history of node-abc123",
        "how many nodes crashed this week", "which agents went offline in the last hour",
        "show the events leading to node-7 crash", "top 5 agents by failures this week",
        "show stop failures since 14:00", "count heartbeats in the last 10 minutes",
        "show errors mentioning disk full today", "which nodes failed with connection refused this week",
    ]

    /// Words that start a text search ("mentioning disk full"), and the words after which "with" does ("failed
    /// with connection refused").
    static let textKeywords: Set<String> = ["mentioning", "mention", "mentions", "containing", "contain", "contains", "saying", "matching"]
    static let withAfter: Set<String> = ["failed", "failing", "fails", "crashed", "crashing", "crashes", "crash", "errors", "error", "failures", "failure",
                                         "stopped", "events", "died", "exited", "offline", "degraded"]
    /// Words skipped at the start of a text search ("failed with the error disk full") unless nothing else follows.
    static let textFiller: Set<String> = ["the", "a", "an", "error", "errors", "message", "messages", "text", "word", "words", "phrase"]

    /// Takes a text search out of `words` (lowercased, times already removed): the words after a keyword to the
    /// end, or up to "for"/"on"/"of"/"from" before an entity id. Double-quoted phrases of `question` found among
    /// them stay quoted (words in order). Nil when the question has no keyword.
    func extractText(_ words: inout [String], question: String) throws(TranslationError) -> String? {
        guard let k = words.indices.first(where: { i in
            Self.textKeywords.contains(words[i]) || (words[i] == "with" && i > 0 && Self.withAfter.contains(words[i - 1]))
        }) else { return nil }
        var end = words.count
        for j in (k + 1)..<words.count where j + 1 < words.count && ["for", "on", "of", "from"].contains(words[j]) && isEntityToken(words[j + 1]) {
            end = j
            break
        }
        var picked = Array(words[(k + 1)..<end]).filter { !TextTokens.words($0).isEmpty }
        while picked.count > 1, Self.textFiller.contains(picked[0]) { picked.removeFirst() }
        guard !picked.isEmpty else {
            throw TranslationError(message: "\(words[k]) what? put the words to search for after it, like \"show errors mentioning disk full\"", suggestions: Self.examples)
        }
        var from = k
        if from > 0, ["that", "which"].contains(words[from - 1]), words[k] != "with" { from -= 1 }
        words.removeSubrange(from..<end)
        // Quoted phrases of the question, as words.
        let phrases = question.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { TextTokens.words(String($0.element)) }.filter { $0.count >= 2 }
        let flat = picked.map { TextTokens.words($0) }
        var parts: [String] = []
        var i = 0
        outer: while i < picked.count {
            for phrase in phrases {
                // The phrase's words starting at picked[i], across as many picked tokens as it takes.
                var taken: [String] = []
                var j = i
                while j < picked.count, taken.count < phrase.count {
                    taken += flat[j]
                    j += 1
                }
                if taken == phrase {
                    parts.append("\"" + picked[i..<j].joined(separator: " ") + "\"")
                    i = j
                    continue outer
                }
            }
            parts.append(picked[i])
            i += 1
        }
        return parts.joined(separator: " ")
    }

    static let maxQuestionLength = 500

    /// Phrases naming event types, longest first.
    static let typePhrases: [([String], [EventType], String)] = [
        (["spawn", "failures"], [.spawnFailed], "spawn failures"),
        (["spawn", "failure"], [.spawnFailed], "spawn failures"),
        (["failed", "spawns"], [.spawnFailed], "spawn failures"),
        (["spawn", "errors"], [.spawnFailed], "spawn failures"),
        (["spawn_failed"], [.spawnFailed], "spawn failures"),
        (["stop", "failures"], [.stopFailed], "stop failures"),
        (["stop", "failure"], [.stopFailed], "stop failures"),
        (["failed", "stops"], [.stopFailed], "stop failures"),
        (["stop_failed"], [.stopFailed], "stop failures"),
        (["cluster", "critical"], [.clusterCritical], "cluster critical events"),
        (["cluster", "degraded"], [.clusterDegraded], "cluster degraded events"),
        (["cluster", "healthy"], [.clusterHealthy], "cluster healthy events"),
        (["cluster", "events"], [.clusterHealthy, .clusterDegraded, .clusterCritical], "cluster health events"),
        (["cluster", "health"], [.clusterHealthy, .clusterDegraded, .clusterCritical], "cluster health events"),
        (["spawn", "events"], [.spawnRequested, .spawnSucceeded, .spawnFailed], "spawn events"),
        (["stop", "events"], [.stopRequested, .stopSucceeded, .stopFailed], "stop events"),
        (["spawns"], [.spawnRequested, .spawnSucceeded, .spawnFailed], "spawn events"),
        (["spawned"], [.spawnSucceeded], "successful spawns"),
        (["spawn"], [.spawnRequested, .spawnSucceeded, .spawnFailed], "spawn events"),
        (["stops"], [.stopRequested, .stopSucceeded, .stopFailed], "stop events"),
        (["stopped"], [.stopSucceeded], "stops"),
        (["stop"], [.stopRequested, .stopSucceeded, .stopFailed], "stop events"),
        (["crashes"], [.nodeCrashed], "crashes"),
        (["crashed"], [.nodeCrashed], "crashes"),
        (["crash"], [.nodeCrashed], "crashes"),
        (["crashing"], [.nodeCrashed], "crashes"),
        (["restarts"], [.nodeRestarted], "restarts"),
        (["restarted"], [.nodeRestarted], "restarts"),
        (["restart"], [.nodeRestarted], "restarts"),
        (["failures"], [.spawnFailed, .stopFailed, .nodeCrashed], "failures (spawn failures, stop failures, crashes)"),
        (["failure"], [.spawnFailed, .stopFailed, .nodeCrashed], "failures (spawn failures, stop failures, crashes)"),
        (["failed"], [.spawnFailed, .stopFailed, .nodeCrashed], "failures (spawn failures, stop failures, crashes)"),
        (["errors"], [.spawnFailed, .stopFailed, .nodeCrashed], "failures (spawn failures, stop failures, crashes)"),
        (["alerts"], [.spawnFailed, .stopFailed, .nodeCrashed, .agentOffline, .clusterDegraded, .clusterCritical], "alerts"),
        (["offline"], [.agentOffline], "agents going offline"),
        (["degraded"], [.agentDegraded], "agent degradations"),
        (["degradations"], [.agentDegraded], "agent degradations"),
        (["recovered"], [.agentRecovered], "agent recoveries"),
        (["recoveries"], [.agentRecovered], "agent recoveries"),
        (["heartbeats"], [.agentHeartbeat], "heartbeats"),
        (["heartbeat"], [.agentHeartbeat], "heartbeats"),
        (["registrations"], [.agentRegistered], "registrations"),
        (["registered"], [.agentRegistered], "registrations"),
        (["unregistered"], [.agentUnregistered], "unregistrations"),
        (["metrics"], [.storageMetrics], "storage metrics"),
        (["log", "records"], [.log], "log records"),
        (["log", "events"], [.log], "log records"),
        (["logs"], [.log], "log records"),
    ]

    /// Interprets `question`.
    /// - Throws: `TranslationError` with suggestions when the question is not understood.
    public func interpret(_ question: String) throws(TranslationError) -> Interpretation {
        guard question.count <= Self.maxQuestionLength else {
            throw TranslationError(message: "the question is longer than \(Self.maxQuestionLength) characters", suggestions: Self.examples)
        }
        let original = question.replacingApostrophes.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .map { String($0).trimmingCharacters(in: "?!.,;\"") }.filter { !$0.isEmpty }
        var words = original.map { $0.lowercased() }
        guard !words.isEmpty else { throw TranslationError(message: "the question is empty", suggestions: Self.examples) }
        let nowMicros = now()
        var query = EventQuery()

        // Time.
        let (range, timeText) = try extractTime(&words, now: nowMicros)
        if let range {
            query.since = range.lowerBound
            query.until = range.upperBound == Int64.max ? nil : range.upperBound
        }

        // Text: "mentioning disk full", "failed with connection refused" (the words to the end, or to "for <entity>").
        let text = try extractText(&words, question: question)
        query.text = text

        // Entities: ids like agent-001, node-abc123, cluster; keep their original case.
        var entity: String?
        for (i, w) in words.enumerated() where entity == nil && isEntityToken(w) {
            entity = original.first { $0.lowercased() == w } ?? w
            words.remove(at: i)
            break
        }
        if entity == nil, let i = words.firstIndex(of: "cluster"), !words.contains(where: { ["critical", "degraded", "healthy", "events", "health"].contains($0) }) {
            entity = "cluster"
            words.remove(at: i)
        }

        // Types.
        var types: [EventType] = []
        var typeText: String?
        var i = 0
        while i < words.count {
            var matched = false
            for (phrase, ts, text) in Self.typePhrases where i + phrase.count <= words.count && Array(words[i..<(i + phrase.count)]) == phrase {
                for t in ts where !types.contains(t) { types.append(t) }
                typeText = typeText.map { $0 + " and " + text } ?? text
                words.removeSubrange(i..<(i + phrase.count))
                matched = true
                break
            }
            if !matched { i += 1 }
        }
        // "went offline" etc. need no more; "agents went offline" is about agents.
        query.types = types
        query.entity = entity
        let has: (String) -> Bool = { words.contains($0) }
        let joined = " " + words.joined(separator: " ") + " "
        let subject: GroupKey? = has("agents") || has("agent") ? .agent : (has("nodes") || has("node") ? .node : nil)
        let what = (typeText ?? "events") + (text.map { " mentioning \($0)" } ?? "")
        let whenText = timeText.map { " " + $0 } ?? ""
        let aboutText = entity.map { " for \($0)" } ?? ""

        // Chain: "events leading to node-7 crash", "what happened before node-7 crashed".
        if joined.contains(" leading to ") || joined.contains(" led to ") || joined.contains(" before ") {
            guard let entity else {
                throw TranslationError(message: "name the entity whose event you mean, like \"show the events leading to node-7 crash\"", suggestions: Self.examples)
            }
            if query.types.isEmpty { query.types = [.nodeCrashed] }
            query.limit = 1
            let target = typeText ?? "crash"
            return Interpretation(action: .chain, query: query,
                                  sentence: "The events of \(entity) and the entities it involves that led up to its newest \(target)\(whenText).")
        }

        // Top N: "top 5 agents by failures this week".
        if let t = words.firstIndex(of: "top") {
            var n = 5
            if t + 1 < words.count, let v = Int(words[t + 1]) { n = v }
            guard (1...100).contains(n) else { throw TranslationError(message: "top N needs N between 1 and 100", suggestions: Self.examples) }
            let key = subject ?? .entity
            return Interpretation(action: .group(key, top: n), query: query,
                                  sentence: "The \(n) \(key == .entity ? "entities" : key.rawValue + "s") with the most \(what)\(whenText)\(aboutText).")
        }

        let isCount = joined.contains(" how many ") || joined.hasPrefix(" count ") || joined.contains(" number of ")
        if isCount {
            if let subject, !types.isEmpty || joined.contains(" events ") {
                return Interpretation(action: .countDistinct(subject), query: query,
                                      sentence: "How many distinct \(subject.rawValue)s had \(what)\(whenText)\(aboutText), with the count per \(subject.rawValue).")
            }
            guard !types.isEmpty || entity != nil || range != nil || text != nil || joined.contains(" events ") else {
                throw TranslationError(message: "count what? name an event kind (spawn failures, crashes, heartbeats, ...)", suggestions: Self.examples)
            }
            return Interpretation(action: .count, query: query, sentence: "Count of \(what)\(whenText)\(aboutText), by type.")
        }

        // "which agents went offline in the last hour": the distinct agents.
        if joined.hasPrefix(" which "), let subject {
            guard !types.isEmpty || text != nil else { throw TranslationError(message: "which \(subject.rawValue)s did what? name an event kind", suggestions: Self.examples) }
            return Interpretation(action: .group(subject, top: nil), query: query,
                                  sentence: "The \(subject.rawValue)s with \(what)\(whenText), with how many each.")
        }

        // Timeline: "what happened to agent-001", "agent-001 timeline", "crash history of node-abc123".
        if let entity {
            query.limit = 100
            return Interpretation(action: .list, query: query,
                                  sentence: "\(typeText.map { $0.prefix(1).uppercased() + $0.dropFirst() } ?? "Events") of \(entity)\(whenText), newest first.")
        }

        guard !types.isEmpty || text != nil || joined.contains(" events ") || (range != nil && (has("show") || has("list") || has("what"))) else {
            throw TranslationError(message: "could not read \"\(question.prefix(80))\": it names no event kind, entity or time", suggestions: suggestions(for: words))
        }
        return Interpretation(action: .list, query: query, sentence: "\(what.prefix(1).uppercased() + what.dropFirst())\(whenText)\(aboutText), newest first.")
    }

    func isEntityToken(_ w: String) -> Bool {
        guard w.count >= 3, (try? GridEvent.validateId(w, what: "entity")) != nil else { return false }
        let prefixes = ["agent-", "node-", "agent_", "node_", "host-", "svc-", "service-"]
        if prefixes.contains(where: { w.hasPrefix($0) }) { return true }
        return w.contains("-") && w.contains(where: \.isNumber) && !w.contains(":")
    }

    /// Examples that share a word with the question, then the rest.
    func suggestions(for words: [String]) -> [String] {
        let set = Set(words)
        let scored = Self.examples.map { ex in (ex, ex.split(separator: " ").filter { set.contains(String($0)) }.count) }
        return scored.sorted { $0.1 > $1.1 }.prefix(5).map(\.0)
    }

    // MARK: Time phrases

    func extractTime(_ words: inout [String], now: Int64) throws(TranslationError) -> (Range<Int64>?, String?) {
        // The time arithmetic is GridEvents' `TimeExpression`, shared with the tools' --since/--until.
        let day = TimeExpression.day
        let midnight = TimeExpression.midnight(now)
        let monday = TimeExpression.monday(now)
        func remove(_ at: Int, _ n: Int) { words.removeSubrange(at..<(at + n)) }
        func find(_ phrase: [String]) -> Int? {
            guard phrase.count <= words.count else { return nil }
            for i in 0...(words.count - phrase.count) where Array(words[i..<(i + phrase.count)]) == phrase { return i }
            return nil
        }
        func clock(_ s: String) -> Int64? { TimeExpression.clock(s) }
        if let i = find(["between"]), i + 3 < words.count, words[i + 2] == "and" {
            guard let a = clock(words[i + 1]), let b = clock(words[i + 3]) else {
                throw TranslationError(message: "between needs two times like 10:00 and 12:30 (UTC)", suggestions: Self.examples)
            }
            guard a < b else { throw TranslationError(message: "between \(words[i + 1]) and \(words[i + 3]): the first time must come first", suggestions: Self.examples) }
            let text = "between \(words[i + 1]) and \(words[i + 3]) UTC today"
            remove(i, 4)
            return ((midnight + a)..<(midnight + b), text)
        }
        if let i = find(["since", "yesterday"]) {
            remove(i, 2)
            return ((midnight - day)..<Int64.max, "since yesterday")
        }
        if let i = find(["since"]), i + 1 < words.count {
            guard let start = TimeExpression.lastClock(words[i + 1], now: now) else {
                throw TranslationError(message: "since needs a time like 14:00 (UTC)", suggestions: Self.examples)
            }
            let text = "since \(words[i + 1]) UTC"
            remove(i, 2)
            return (start..<Int64.max, text)
        }
        for (phrase, range, text) in [
            (["this", "week"], monday..<Int64.max, "this week"),
            (["last", "week"], (monday - 7 * day)..<monday, "last week"),
            (["this", "hour"], TimeExpression.startOfHour(now)..<Int64.max, "this hour"),
            (["today"], midnight..<Int64.max, "today"),
            (["yesterday"], (midnight - day)..<midnight, "yesterday"),
        ] as [([String], Range<Int64>, String)] {
            if let i = find(phrase) {
                remove(i, phrase.count)
                if i > 0, ["in", "for", "during", "from", "of"].contains(words[i - 1]) { words.remove(at: i - 1) }
                return (range, text)
            }
        }
        // The spelled-out units only: in a sentence "m" or "s" is not a unit.
        let units = TimeExpression.units.filter { $0.key.count >= 3 && !$0.key.hasPrefix("sec") }
        for (i, w) in words.enumerated() where w == "last" || w == "past" {
            var n: Int64 = 1
            var j = i + 1
            if j < words.count, let v = Int64(words[j]) {
                n = v
                j += 1
            }
            guard j < words.count, let unit = units[words[j]] else { continue }
            guard n >= 1, n <= 100_000 else { throw TranslationError(message: "\(n) \(words[j]) is out of range", suggestions: Self.examples) }
            let text = "in the last \(n == 1 ? "" : "\(n) ")\(n == 1 ? words[j].trimmingCharacters(in: "s") : words[j])"
            var from = i
            if from > 0, words[from - 1] == "the" { from -= 1 }
            if from > 0, ["in", "for", "during", "over"].contains(words[from - 1]) { from -= 1 }
            words.removeSubrange(from...j)
            return ((now - n * unit)..<Int64.max, text)
        }
        return (nil, nil)
    }
}

extension String {
    var replacingApostrophes: String {
        var s = self
        s = s.replacingOccurrences(of: "\u{2019}", with: "'")
        return s
    }

    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
