import GridEvents
import Testing

/// `TimeExpression`: what --since/--until (events, follow, export, emit --time) accept.
@Suite("time expressions")
struct TimeExpressionTests {
    // 2026-11-29T18:30:15Z
    let now = TimeText.parse("2026-11-29T18:30:15Z")!

    func at(_ text: String) -> Int64 { TimeText.parse(text)! }

    @Test("RFC 3339, ages, today, yesterday, now and HH:MM")
    func forms() throws {
        #expect(try TimeExpression.parse("2026-11-28T02:10:00.5+01:00", now: now) == at("2026-11-28T01:10:00.5Z"))
        #expect(try TimeExpression.parse("15m", now: now) == at("2026-11-29T18:15:15Z"))
        #expect(try TimeExpression.parse("2h", now: now) == at("2026-11-29T16:30:15Z"))
        #expect(try TimeExpression.parse("7d", now: now) == at("2026-11-22T18:30:15Z"))
        #expect(try TimeExpression.parse("1w", now: now) == at("2026-11-22T18:30:15Z"))
        #expect(try TimeExpression.parse("90s", now: now) == at("2026-11-29T18:28:45Z"))
        #expect(try TimeExpression.parse("10min", now: now) == at("2026-11-29T18:20:15Z"))
        #expect(try TimeExpression.parse("3hours", now: now) == at("2026-11-29T15:30:15Z"))
        #expect(try TimeExpression.parse("now", now: now) == now)
        #expect(try TimeExpression.parse("today", now: now) == at("2026-11-29T00:00:00Z"))
        #expect(try TimeExpression.parse("Yesterday", now: now) == at("2026-11-28T00:00:00Z"))
        // HH:MM: the most recent such time, today's when it has passed, else yesterday's.
        #expect(try TimeExpression.parse("14:00", now: now) == at("2026-11-29T14:00:00Z"))
        #expect(try TimeExpression.parse("18:30", now: now) == at("2026-11-29T18:30:00Z"))
        #expect(try TimeExpression.parse("23:45", now: now) == at("2026-11-28T23:45:00Z"))
        #expect(try TimeExpression.parse("9:05", now: now) == at("2026-11-29T09:05:00Z"))
    }

    @Test("anything else is refused with the accepted forms named")
    func refused() {
        for bad in ["", "15", "m15", "-2h", "0m", "24:00", "12:60", "12:5", "tomorrow", "2026-13-01T00:00:00Z", "15 parsecs", "9999999999d"] {
            do {
                _ = try TimeExpression.parse(bad, now: now)
                Issue.record("\"\(bad)\" was accepted")
            } catch {
                #expect(error.message.contains("RFC 3339"), "\(bad): \(error.message)")
            }
        }
    }

    @Test("an age too long to count in microseconds is refused with a reason, never a trap")
    func ageTooLong() throws {
        for bad in ["999999999w", "999999999d", "999999999weeks", "15250285w"] {
            #expect(TimeExpression.duration(bad) == nil, "\(bad)")
            do {
                _ = try TimeExpression.parse(bad, now: now)
                Issue.record("\"\(bad)\" was accepted")
            } catch {
                #expect(error.message.contains("too long ago") && error.message.contains("at most"), "\(bad): \(error.message)")
            }
        }
        // The longest age that fits is still a time.
        let longest = Int64.max / (7 * TimeExpression.day)
        #expect(try TimeExpression.parse("\(longest)w", now: now) == now - longest * 7 * TimeExpression.day)
        #expect(try TimeExpression.parse("999999999s", now: now) == now - 999_999_999 * 1_000_000)
    }

    @Test("weeks start on Monday; midnight before 1970 rounds down")
    func calendar() {
        #expect(TimeExpression.monday(now) == at("2026-11-23T00:00:00Z"))
        #expect(TimeExpression.midnight(-1) == -TimeExpression.day)
        #expect(TimeExpression.startOfHour(now) == at("2026-11-29T18:00:00Z"))
    }
}
