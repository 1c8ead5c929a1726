import EventEmitter
#if canImport(Glibc)
import Glibc
#endif

/// A service instrumented with grid events: it emits two catalogue events and two custom ones, waits until the
/// daemon acknowledged them, and prints each event's id on its own line (the check script looks them up).
///
/// Where events go comes from `EVENT_STORAGE` (a socket path or `unix:///path`); unset, the emitter is disabled
/// and the service still runs. `import EventEmitter` alone brings the event types (`GridEventKind`, `FieldValue`).
@main
struct InstrumentedService {
    static func main() {
        var options = EmitterOptions(producerName: "instrumented-service")
        options.trackAcknowledgements = true
        let events = EventEmitter(options: options)

        var emitted: [(sequence: UInt64, kind: GridEventKind)] = []
        func emit(_ kind: GridEventKind) {
            let sequence = events.emit(kind)
            if sequence > 0 { emitted.append((sequence, kind)) }
        }

        // Typed events from the catalogue: the compiler checks every field.
        emit(.spawnRequested(nodeId: "node-example", agentId: "agent-example", port: 9100,
                             storagePath: "/tmp/node-example", memoryLimitMb: 512))
        emit(.spawnSucceeded(nodeId: "node-example", agentId: "agent-example", pid: Int(getpid()), port: 9100))

        // The service's own events: a name, free fields and the entities they concern.
        emit(.custom(name: "checkout_completed",
                     fields: ["order_id": .string("order-1001"), "amount_cents": .int(1299), "express": .bool(true)],
                     entities: ["customer-42", "order-1001"]))
        emit(.custom(name: "cache_evicted", fields: ["bytes": .int(65_536), "ratio": .double(0.25)],
                     entities: ["cache-sessions"]))

        guard events.isEnabled else {
            print("EVENT_STORAGE is not set: events are disabled, the service ran anyway")
            return
        }
        let delivered = events.flush(timeout: 20)
        for e in emitted {
            guard events.isAcknowledged(sequence: e.sequence) else {
                print("not acknowledged: \(events.id(of: e.kind, sequence: e.sequence))")
                exit(1)
            }
            print(events.id(of: e.kind, sequence: e.sequence))
        }
        events.close()
        exit(delivered ? 0 : 1)
    }
}
