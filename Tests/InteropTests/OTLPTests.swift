import EventStore
import Foundation
import GridBase
import GridEvents
import GridOTLP
import SwiftProtobuf
import Testing

@Suite("OpenTelemetry logs in: POST /v1/logs", .serialized)
struct OTLPTests {
    @Test func whatThePythonSDKSendsCanBeQueriedBack() throws {
        let daemon = try DaemonUnderTest("otlpsdk")
        let out = try python("otlp_send.py", [daemon.base + "/v1/logs", "40"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        #expect(report["export_ok"] as? Bool == true, "the exporter saw success: \(out)")
        let traceId = try #require(report["trace_id"] as? String)
        let spanId = try #require(report["span_id"] as? String)

        let logs = try daemon.events("type=log")
        #expect(logs.count == 20)
        let custom = try daemon.events("type=custom&prefix=event-payment_done-")
        #expect(custom.count == 20, "event.name names the type")
        for e in logs {
            let f = try #require(e["fields"] as? [String: Any])
            #expect(f["level"] as? String == "warning")
            #expect(f["severity_number"] as? Int == 13)
            #expect(f["severity_text"] as? String == "WARN")
            #expect(f["label"] as? String == "checkout.payments", "the instrumentation scope")
            #expect(f["trace_id"] as? String == traceId)
            #expect(f["span_id"] as? String == spanId)
            #expect(f["node_id"] as? String == "node-7")
            #expect((f["message"] as? String)?.hasPrefix("payment retry") == true)
            #expect((f["file"] as? String)?.hasSuffix("otlp_send.py") == true && f["line"] is Int, "code attributes -> file, line")
            #expect(Set(e["entities"] as? [String] ?? []) == ["service-checkout", "host-web-7", "node-7"])
        }
        for e in custom {
            let f = try #require(e["fields"] as? [String: Any])
            #expect(f["amount"] as? Double == 12.5)
            #expect((f["order"] as? String)?.hasPrefix("o-") == true)
            #expect(f["level"] as? String == "info")
            #expect(f["service_name"] as? String == "checkout")
        }
        #expect(try daemon.events("entity=node-7").count == 20)
        #expect(try daemon.events("entity=service-checkout").count == 40)
    }

    static let traceHex = "5b8efff798038103d269b633813fc60c"
    static let spanHex = "eee19b7ec3c1b174"

    static func jsonBody(now: UInt64) -> String {
        """
        {"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
          "scopeLogs":[{"scope":{"name":"billing.jobs"},"logRecords":[
            {"timeUnixNano":"\(now)","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"job failed"},
             "traceId":"\(traceHex)","spanId":"\(spanHex)",
             "attributes":[{"key":"event.id","value":{"stringValue":"event-log-feedbeef0001-1"}},
                           {"key":"retries","value":{"intValue":"3"}},{"key":"unknownThing","value":{"kvlistValue":{"values":[]}}}],
             "someFieldFromTheFuture":true},
            {"time_unix_nano":"\(now + 1000)","attributes":[{"key":"event.name","value":{"stringValue":"node_crashed"}},
                           {"key":"node_id","value":{"stringValue":"node-9"}},{"key":"agent_id","value":{"stringValue":"agent-002"}},
                           {"key":"signal","value":{"intValue":9}}]},
            {"timeUnixNano":"\(now + 2000)","attributes":[{"key":"event.name","value":{"stringValue":"node_crashed"}},
                           {"key":"agent_id","value":{"stringValue":"agent-002"}}]}
          ]}]}]}
        """
    }

    @Test func jsonEncodingWithPartialSuccessKeptIdsAndCatalogueTypes() throws {
        let daemon = try DaemonUnderTest("otlpjson")
        let now = UInt64(StoreOptions.nowMicros()) * 1000
        let a = try http("POST", daemon.base + "/v1/logs", headers: ["Content-Type": "application/json"], body: Data(Self.jsonBody(now: now).utf8))
        #expect(a.status == 200, "\(a.text)")
        #expect(a.headers["content-type"] == "application/json")
        let partial = try #require(try a.json()["partialSuccess"] as? [String: Any], "\(a.text)")
        #expect(partial["rejectedLogRecords"] as? String == "1")
        #expect((partial["errorMessage"] as? String)?.contains("record 3") == true)
        #expect((partial["errorMessage"] as? String)?.contains("node_id") == true)

        let kept = try http("GET", daemon.base + "/api/events/event-log-feedbeef0001-1")
        #expect(kept.status == 200, "a record carrying one of our ids keeps it")
        let f = try #require((try kept.json()["event"] as? [String: Any])?["fields"] as? [String: Any])
        #expect(f["trace_id"] as? String == Self.traceHex, "hex in OTLP/JSON stays the same hex")
        #expect(f["span_id"] as? String == Self.spanHex)
        #expect(f["level"] as? String == "error")
        #expect(f["label"] as? String == "billing.jobs")
        #expect(f["retries"] as? Int == 3)
        #expect(f["unknownthing"] as? String == "{}", "a map as JSON text; letters lowercased")
        let crashes = try daemon.events("type=node_crashed")
        #expect(crashes.count == 1)
        #expect(crashes.first?["entities"] as? [String] == ["node-9", "agent-002"])
        #expect((crashes.first?["fields"] as? [String: Any])?["signal"] as? Int == 9)
    }

    @Test func protobufAnswersAndRetriesStoreOnce() throws {
        let daemon = try DaemonUnderTest("otlppb")
        var request = Grid_Otlp_V1_ExportLogsServiceRequest()
        var rl = Grid_Otlp_V1_ResourceLogs()
        var service = Grid_Otlp_V1_KeyValue()
        service.key = "host.name"
        service.value.stringValue = "db-3"
        rl.resource.attributes = [service]
        var sl = Grid_Otlp_V1_ScopeLogs()
        for i in 0..<10 {
            var r = Grid_Otlp_V1_LogRecord()
            r.timeUnixNano = UInt64(StoreOptions.nowMicros()) * 1000
            r.severityNumber = .info
            r.body.stringValue = "tick \(i)"
            if i == 9 { r.traceID = Data([1, 2, 3]) }  // not 16 bytes: rejected
            sl.logRecords.append(r)
        }
        rl.scopeLogs = [sl]
        request.resourceLogs = [rl]
        let body: Data = try request.serializedBytes()
        for attempt in 0..<2 {
            let a = try http("POST", daemon.base + "/v1/logs", headers: ["Content-Type": "application/x-protobuf"], body: body)
            #expect(a.status == 200)
            #expect(a.headers["content-type"] == "application/x-protobuf")
            let answer = try Grid_Otlp_V1_ExportLogsServiceResponse(serializedBytes: a.body)
            #expect(answer.partialSuccess.rejectedLogRecords == 1, "attempt \(attempt)")
            #expect(answer.partialSuccess.errorMessage.contains("trace_id"))
            #expect(try daemon.events("entity=host-db-3").count == 9, "a retried export stores nothing twice (ids from the record's bytes)")
        }
    }

    @Test func badInputGetsTheStatusCodesOTLPPrescribes() throws {
        let daemon = try DaemonUnderTest("otlpbad", extra: ["--max-ingest-body", "2KiB"])
        let url = daemon.base + "/v1/logs"
        let garbage = try http("POST", url, headers: ["Content-Type": "application/x-protobuf"], body: Data([0xFF, 0xFF, 0xFF, 0x07]))
        #expect(garbage.status == 400)
        let status = try Grid_Otlp_V1_Status(serializedBytes: garbage.body)
        #expect(status.message.contains("ExportLogsServiceRequest"), "a google.rpc.Status says why")
        let badJSON = try http("POST", url, headers: ["Content-Type": "application/json"], body: Data("{\"resourceLogs\": [".utf8))
        #expect(badJSON.status == 400)
        #expect(((try? badJSON.json())?["message"] as? String)?.isEmpty == false)
        #expect(try http("POST", url, headers: ["Content-Type": "text/plain"], body: Data("hello".utf8)).status == 415)
        #expect(try http("POST", url, body: Data("{}".utf8)).status == 415, "no content type")
        #expect(try http("POST", url, headers: ["Content-Type": "application/json", "Content-Encoding": "br"], body: Data("{}".utf8)).status == 415)
        let big = try http("POST", url, headers: ["Content-Type": "application/json"], body: Data(repeating: 0x20, count: 4096))
        #expect(big.status == 413)
        let empty = try http("POST", url, headers: ["Content-Type": "application/json"], body: Data("{}".utf8))
        #expect(empty.status == 200, "an empty request is a success")
        #expect(try http("GET", daemon.base + "/api/stats").status == 200, "the daemon is fine")
    }

    @Test func mappingRulesWithoutADaemon() throws {
        var record = Grid_Otlp_V1_LogRecord()
        record.severityText = "WARN"
        record.body.kvlistValue.values = [{ var kv = Grid_Otlp_V1_KeyValue(); kv.key = "a"; kv.value.intValue = 1; return kv }()]
        var attr = Grid_Otlp_V1_KeyValue()
        attr.key = "event.name"
        attr.value.stringValue = "user.login"
        record.attributes = [attr]
        var rl = Grid_Otlp_V1_ResourceLogs()
        var sl = Grid_Otlp_V1_ScopeLogs()
        sl.logRecords = [record]
        rl.scopeLogs = [sl]
        var request = Grid_Otlp_V1_ExportLogsServiceRequest()
        request.resourceLogs = [rl]
        let outcome = OTLPLogs.map(request, encoding: .protobuf, now: 1_700_000_000_000_000)
        #expect(outcome.rejected == 0)
        let e = try #require(outcome.events.first)
        #expect(e.typeName == "user_login", "an event name made a custom event name")
        #expect(e.timestamp == 1_700_000_000_000_000, "no time: now")
        #expect(e.id.hasPrefix("event-user_login-") && e.id.hasSuffix("-1"))
        // The id is grid-cli's rule for a line without one, over the record's identity bytes (resource, scope and
        // record serialized, each behind its varint length) and its ordinal in the request.
        var identity: [UInt8] = []
        for part: [UInt8] in [try rl.resource.serializedBytes(), try sl.scope.serializedBytes(), try record.serializedBytes()] {
            EventEncoder.varint(UInt64(part.count), &identity)
            identity += part
        }
        let h = identity.withUnsafeBytes { Hash.bytes($0, seed: UInt64(bitPattern: e.timestamp)) } & 0xFFFF_FFFF_FFFF
        let hex = String(h, radix: 16)
        #expect(e.id == "event-user_login-" + String(repeating: "0", count: 12 - hex.count) + hex + "-1")
        #expect(e.id == identity.withUnsafeBytes { LineIds.id(for: $0, typeName: "user_login", timestamp: e.timestamp, line: 1) })
        let fields = Dictionary(uniqueKeysWithValues: e.kind.namedFields.map { ($0.name, $0.value) })
        #expect(fields["level"] == .string("warning"), "severity text when there is no number")
        #expect(fields["message"] == .string(#"{"a":1}"#))
        var mapping = OTLPLogs.Mapping()
        mapping.defaultType = "deploy_note"
        record.attributes = []
        sl.logRecords = [record]
        rl.scopeLogs = [sl]
        request.resourceLogs = [rl]
        #expect(OTLPLogs.map(request, encoding: .protobuf, mapping: mapping).events.first?.typeName == "deploy_note", "the configured default type")
    }
}
