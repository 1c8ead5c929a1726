import EventStore
import GridEvents

/// The answer to an interpreted question.
public enum Answer: Sendable {
    case events(QueryPage)
    /// A number with its breakdown.
    case count(Int, breakdown: [Bucket])
    case groups([Bucket])
    /// The events leading to (and ending with) the newest matching event.
    case chain([GridEvent])
}

extension QueryEngine {
    /// Runs what the translator understood.
    public func answer(_ interpretation: Interpretation) throws(QueryError) -> Answer {
        let query = interpretation.query
        switch interpretation.action {
        case .list:
            return .events(try find(query))
        case .count:
            let breakdown = group(query, by: .type)
            return .count(breakdown.reduce(0) { $0 + $1.count }, breakdown: breakdown)
        case .countDistinct(let key):
            let groups = group(query, by: key)
            return .count(groups.count, breakdown: groups)
        case .group(let key, let top):
            return .groups(group(query, by: key, top: top))
        case .chain:
            var q = query
            q.limit = 1
            guard let target = try find(q).events.first else {
                return .chain([])
            }
            return .chain(try chain(leadingTo: target.id))
        }
    }

    /// Interprets and answers a question in one step.
    public func ask(_ question: String, translator: Translator = Translator()) throws -> (Interpretation, Answer) {
        let interpretation = try translator.interpret(question)
        return (interpretation, try answer(interpretation))
    }
}
