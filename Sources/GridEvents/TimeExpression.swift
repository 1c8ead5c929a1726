/// Points in time written the way people write them, shared by the plain-English questions (`Translator`) and
/// every `--since`/`--until` of the command-line tools, so "today" or "14:00" means the same everywhere.
/// Times are UTC, microseconds since the epoch.
///
/// `parse` accepts, for a flag's value:
///
/// | text | means |
/// |---|---|
/// | `2026-11-29T02:10:00Z` (RFC 3339, any offset, fractions) | that instant |
/// | `90s`, `15m`, `2h`, `7d`, `1w` (also `15min`, `2hours`, ...) | that long before `now` |
/// | `now` | `now` |
/// | `today`, `yesterday` | midnight UTC starting that day |
/// | `HH:MM` | the most recent such time of day, UTC (today, or yesterday when today's is still ahead) |
public enum TimeExpression {
    public static let minute: Int64 = 60_000_000
    public static let hour: Int64 = 3_600_000_000
    public static let day: Int64 = 86_400_000_000

    /// Duration units by name, as the questions and the flags spell them.
    public static let units: [String: Int64] = [
        "s": 1_000_000, "sec": 1_000_000, "secs": 1_000_000, "second": 1_000_000, "seconds": 1_000_000,
        "m": minute, "min": minute, "mins": minute, "minute": minute, "minutes": minute,
        "h": hour, "hour": hour, "hours": hour,
        "d": day, "day": day, "days": day,
        "w": 7 * day, "week": 7 * day, "weeks": 7 * day,
    ]

    /// Midnight UTC starting the day that holds `now`.
    public static func midnight(_ now: Int64) -> Int64 {
        now >= 0 ? now / day * day : ((now + 1) / day - 1) * day
    }

    /// Monday 00:00 UTC starting the week that holds `now` (weeks start on Monday).
    public static func monday(_ now: Int64) -> Int64 {
        let m = midnight(now)
        // 1970-01-01 was a Thursday.
        let days = m / day
        let weekday = ((days + 3) % 7 + 7) % 7
        return m - weekday * day
    }

    /// The start of the hour that holds `now`.
    public static func startOfHour(_ now: Int64) -> Int64 {
        now >= 0 ? now / hour * hour : ((now + 1) / hour - 1) * hour
    }

    /// `HH:MM` (00:00 to 23:59) as microseconds after midnight; nil for anything else.
    public static func clock(_ text: String) -> Int64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            let h = Int64(parts[0]), let m = Int64(parts[1]), (0..<24).contains(h), (0..<60).contains(m)
        else { return nil }
        return (h * 3600 + m * 60) * 1_000_000
    }

    /// The most recent `HH:MM` at or before `now`: today's, or yesterday's when today's is still ahead.
    public static func lastClock(_ text: String, now: Int64) -> Int64? {
        guard let t = clock(text) else { return nil }
        let start = midnight(now) + t
        return start > now ? start - day : start
    }

    /// A duration like `15m`, `2h`, `7d`, `90s`, `1w`, `10min`, `3hours` (a positive number, then a unit); nil
    /// for anything else and for a duration too long to count in microseconds (`999999999w`).
    public static func duration(_ text: String) -> Int64? {
        guard let (n, unit) = durationParts(text), n <= Int64.max / unit else { return nil }
        return n * unit
    }

    /// The number and the unit (in microseconds) of a duration's text, not yet multiplied.
    private static func durationParts(_ text: String) -> (Int64, Int64)? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9, let n = Int64(digits), n > 0,
            let unit = units[String(text.dropFirst(digits.count)).lowercased()]
        else { return nil }
        return (n, unit)
    }

    /// What a flag's time means (see the table above); `now` is the reference for relative forms.
    /// - Throws: `EventError` listing the accepted forms.
    public static func parse(_ text: String, now: Int64) throws(EventError) -> Int64 {
        let t = text.trimmingSpaces
        switch t.lowercased() {
        case "now": return now
        case "today": return midnight(now)
        case "yesterday": return midnight(now) - day
        default: break
        }
        if let (n, unit) = durationParts(t) {
            // As Quantity.duration: the product must fit (microseconds in an Int64 span about 292,000 years).
            guard n <= Int64.max / unit else {
                throw EventError("\"\(text.prefix(64))\" is too long ago: an age may be at most \(Int64.max / unit)"
                                 + String(t.drop(while: { $0.isASCII && $0.isNumber })))
            }
            return now - n * unit
        }
        if let c = lastClock(t, now: now) { return c }
        if let r = TimeText.parse(t) { return r }
        throw EventError(
            "\"\(text.prefix(64))\" is not a time: use RFC 3339 (2026-11-29T02:10:00Z), an age (15m, 2h, 7d, 1w), "
                + "today, yesterday, now or HH:MM (UTC)")
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
