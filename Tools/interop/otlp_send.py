#!/usr/bin/env python3
"""Sends log records to grid-eventd with the real OpenTelemetry Python SDK and its OTLP/HTTP exporter
(protobuf), through Python's logging module, inside a span so records carry trace and span ids.

    otlp_send.py ENDPOINT COUNT [QUEUE]    # ENDPOINT like http://127.0.0.1:7780/v1/logs

QUEUE is the batch processor's max_queue_size (the SDK's default, 2048, when absent): records logged faster than
the exporter sends them are dropped by the SDK once it is full ("Queue full, dropping Log"), so grid-bench passes
COUNT to measure what the daemon takes rather than what the SDK drops.

Prints one JSON line: {"sent": COUNT, "trace_id": hex, "span_id": hex, "export_ok": bool, "seconds": s}.
Used by Tests/InteropTests/OTLPTests.swift and grid-bench's OTLP row."""
import json
import logging
import sys
import time

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


def main() -> int:
    endpoint, count = sys.argv[1], int(sys.argv[2])
    queue = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    resource = Resource.create({"service.name": "checkout", "host.name": "web-7"})
    provider = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=endpoint, timeout=10)
    results = []
    original_export = exporter.export

    def export(batch):
        result = original_export(batch)
        results.append(result)
        return result

    exporter.export = export
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_queue_size=queue, max_export_batch_size=512,
                                                               schedule_delay_millis=200))
    set_logger_provider(provider)
    trace.set_tracer_provider(TracerProvider(resource=resource))
    tracer = trace.get_tracer("interop-test")

    log = logging.getLogger("checkout.payments")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

    started = time.time()
    with tracer.start_as_current_span("pay") as span:
        context = span.get_span_context()
        for i in range(count):
            if i % 2 == 0:
                log.warning("payment retry %d for node-7", i, extra={"node_id": "node-7", "attempt": i})
            else:
                log.info("payment done %d", i, extra={"event.name": "payment_done", "order": f"o-{i}", "amount": 12.5})
    provider.force_flush(30_000)
    seconds = time.time() - started
    provider.shutdown()
    ok = all(getattr(r, "name", str(r)) == "SUCCESS" for r in results) and len(results) > 0
    print(json.dumps({
        "sent": count,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "export_ok": ok,
        "exports": len(results),
        "seconds": seconds,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
