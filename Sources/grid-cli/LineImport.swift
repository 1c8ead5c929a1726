import EventEmitter
import Foundation
import GridBase
import GridEvents
import Synchronization

/// `grid-cli emit` reading JSON lines: reads standard input in large chunks, splits lines without making a String
/// of each, decodes each with `FlatEventDecoder`, and hands the events to an emitter in waiting mode (it never
/// drops: when its queue is full, reading waits). The emitter's worker encodes and sends batches meanwhile, so
/// reading and decoding run beside sending.
///
/// Ids: a line without an `id` gets `event-<type>-<t>-<line number>`, where `t` is the low 48 bits of XXH3-64
/// of the line's bytes (without its line break) seeded with the event's timestamp, as 12 hex digits. A line
/// without a `timestamp` gets `defaultTime` (the input file's modification time, or `--time`), else the time it
/// is read. So importing the same file again gives every line the same id and time, and the store keeps one copy.
final class LineImport {
    let emitter: EventEmitter
    let maxLine: Int
    let defaultTime: Int64?
    let keepIds: Bool
    let warn: (String) -> Void

    /// Per emitted event, in line order: its sequence in the emitter, its line, and (with `keepIds`) its id.
    private(set) var sequences: [UInt64] = []
    private(set) var lines: [Int32] = []
    private(set) var ids: [String] = []
    private(set) var bad = 0
    /// Set when `emit` found no room within the wait: reading stopped before this line.
    private(set) var stoppedAtLine: Int?
    /// Set when reading failed (a directory, an I/O error): the errno, and the lines read before it.
    private(set) var readError: (errno: Int32, afterLine: Int)?
    let linesRead = SharedCount()

    init(emitter: EventEmitter, maxLine: Int, defaultTime: Int64?, keepIds: Bool, warn: @escaping (String) -> Void) {
        self.emitter = emitter
        self.maxLine = maxLine
        self.defaultTime = defaultTime
        self.keepIds = keepIds
        self.warn = warn
    }

    /// Reads `fd` to its end (or until the emitter takes no more events).
    func run(fd: Int32) {
        let capacity = max(8 << 20, maxLine + 2)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        var lineNumber = 0
        var skippingLongLine = false
        var eof = false
        while !eof, stoppedAtLine == nil {
            let n = Self.readSome(fd, buffer.baseAddress! + filled, capacity - filled)
            if n < 0 {
                // Not the end of the input: what is left of an unfinished line is not a line.
                readError = (errno, lineNumber)
                break
            }
            if n == 0 {
                eof = true
                if filled == 0 { break }
            } else {
                filled += n
            }
            let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var start = 0
            while start < filled {
                let rest = filled - start
                guard let nl = memchr(base + start, 0x0A, rest) else {
                    // No line break in what is left: keep it for the next read, or end it at end of input.
                    if eof {
                        handleLine(base + start, rest, &lineNumber, &skippingLongLine)
                        start = filled
                    } else if rest > maxLine {
                        // Longer than allowed: skip to its end.
                        if !skippingLongLine {
                            lineNumber += 1
                            tooLong(lineNumber)
                            skippingLongLine = true
                        }
                        start = filled
                    }
                    break
                }
                let end = nl.assumingMemoryBound(to: UInt8.self) - base
                handleLine(base + start, end - start, &lineNumber, &skippingLongLine)
                start = end + 1
                if stoppedAtLine != nil { break }
            }
            if start > 0 {
                memmove(buffer.baseAddress!, buffer.baseAddress! + start, filled - start)
                filled -= start
            }
        }
    }

    private static func readSome(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ count: Int) -> Int {
        while true {
            let n = read(fd, p, count)
            if n < 0, errno == EINTR { continue }
            return n
        }
    }

    private func tooLong(_ line: Int) {
        warn("line \(line): longer than \(maxLine) bytes; skipped")
        bad += 1
    }

    private func handleLine(_ p: UnsafePointer<UInt8>, _ length: Int, _ lineNumber: inout Int, _ skipping: inout Bool) {
        if skipping {
            // The end of a line already reported as too long.
            skipping = false
            return
        }
        lineNumber += 1
        linesRead.value.store(lineNumber, ordering: .relaxed)
        var n = length
        if n > 0, p[n - 1] == 0x0D { n -= 1 }
        if n > maxLine {
            tooLong(lineNumber)
            return
        }
        var blank = true
        for i in 0..<n where !(p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x0D) {
            blank = false
            break
        }
        if blank { return }
        let bytes = UnsafeRawBufferPointer(start: p, count: n)
        let draft: GridEvent.Draft
        do throws(EventError) {
            draft = try FlatEventDecoder.decode(bytes, limit: maxLine)
        } catch {
            warn("line \(lineNumber): \(error.message)")
            bad += 1
            return
        }
        let timestamp = draft.timestamp ?? defaultTime ?? GridClock.nowMicros()
        let id = draft.id ?? LineIds.id(for: bytes, typeName: draft.kind.typeName, timestamp: timestamp, line: lineNumber)
        do throws(EventError) {
            try GridEvent.validate(kind: draft.kind, id: id)
        } catch {
            warn("line \(lineNumber): \(error.message)")
            bad += 1
            return
        }
        let seq = emitter.emit(checked: draft.kind, id: id, at: timestamp)
        if seq == 0 {
            stoppedAtLine = lineNumber
            return
        }
        sequences.append(seq)
        lines.append(Int32(truncatingIfNeeded: lineNumber))
        if keepIds { ids.append(id) }
    }
}

/// A count read by another thread.
final class SharedCount: Sendable {
    let value = Atomic<Int>(0)
}

/// Shows progress on a terminal: lines read, events acknowledged, events per second, rewritten in place four
/// times a second.
final class ProgressLine: Sendable {
    /// 1 while a progress line is on the terminal.
    static let shown = SharedCount()
    private let stopped = SharedCount()
    private let done = DispatchSemaphore(value: 0)

    init(linesRead: @escaping @Sendable () -> Int, acked: @escaping @Sendable () -> Int) {
        let started = Date()
        ProgressLine.shown.value.store(1, ordering: .relaxed)
        Thread.detachNewThread { [stopped, done] in
            while stopped.value.load(ordering: .relaxed) == 0 {
                usleep(250_000)
                if stopped.value.load(ordering: .relaxed) != 0 { break }
                let a = acked()
                let seconds = max(Date().timeIntervalSince(started), 0.001)
                let text = "\r\(linesRead()) lines read, \(a) acknowledged, \(Int(Double(a) / seconds)) events/s\u{1B}[K"
                FileHandle.standardError.write(Data(text.utf8))
            }
            done.signal()
        }
    }

    /// Stops and clears the line.
    func finish() {
        stopped.value.store(1, ordering: .relaxed)
        done.wait()
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        ProgressLine.shown.value.store(0, ordering: .relaxed)
    }
}
