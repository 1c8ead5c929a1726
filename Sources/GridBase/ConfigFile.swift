import Foundation

/// The TOML subset the grid's config files use: `key = value` lines with quoted strings, integers, floats and
/// booleans, `[table]` headers and `#` comments. Anything else is an error naming the file and line.
/// Used by grid-agent (`agent-config.toml`) and grid-eventd (`--config`).
public struct ConfigFile: Sendable {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// One `key = value` line.
    public struct Entry: Sendable {
        public var table: String
        public var key: String
        public var rawValue: String
        /// `file:line`, for error messages.
        public var location: String

        public func string() throws -> String {
            guard rawValue.count >= 2, rawValue.hasPrefix("\""), rawValue.hasSuffix("\"") else {
                throw ParseError(description: "\(location): \(key) must be a quoted string")
            }
            return String(rawValue.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
        }

        public func int() throws -> Int {
            guard let v = Int(rawValue.replacingOccurrences(of: "_", with: "")) else {
                throw ParseError(description: "\(location): \(key) must be an integer")
            }
            return v
        }

        public func double() throws -> Double {
            guard let v = Double(rawValue.replacingOccurrences(of: "_", with: "")) else {
                throw ParseError(description: "\(location): \(key) must be a number")
            }
            return v
        }

        /// An error naming this line.
        public func error(_ message: String) -> ParseError { ParseError(description: "\(location): \(message)") }
    }

    public var entries: [Entry] = []

    /// Reads a config file of at most 64 KiB; `tables` lists the `[table]` names allowed.
    public static func load(path: String, tables: Set<String> = []) throws -> ConfigFile {
        // Read at most one byte past the limit, so /dev/zero or a FIFO cannot hang the reader or fill memory.
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.read(upToCount: (64 << 10) + 1)
        else { throw ParseError(description: "cannot read \(path)") }
        try? handle.close()
        guard data.count <= 64 << 10 else { throw ParseError(description: "\(path) is larger than 64 KiB") }
        return try parse(String(decoding: data, as: UTF8.self), name: path, tables: tables)
    }

    public static func parse(_ text: String, name: String = "config", tables: Set<String> = []) throws -> ConfigFile {
        var file = ConfigFile()
        var table = ""
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let location = "\(name):\(n + 1)"
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw ParseError(description: "\(location): bad table header \(line)") }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard tables.contains(table) else { throw ParseError(description: "\(location): unknown table [\(table)]") }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw ParseError(description: "\(location): expected key = value") }
            file.entries.append(
                Entry(
                    table: table, key: line[..<eq].trimmingCharacters(in: .whitespaces),
                    rawValue: line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces), location: location))
        }
        return file
    }

    static func stripComment(_ line: String) -> String {
        var inString = false
        var out = ""
        for ch in line {
            if ch == "\"" { inString.toggle() }
            if ch == "#", !inString { break }
            out.append(ch)
        }
        return out
    }
}
