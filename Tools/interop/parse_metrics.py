#!/usr/bin/env python3
"""Reads a Prometheus text exposition on stdin, parses it with prometheus_client's own parser and prints it as
JSON: {"families": {name: {"type": ..., "samples": [[sample name, {labels}, value], ...]}}}. A parse error exits 1
with the parser's message. Used by Tests/InteropTests/MetricsTests.swift."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    families = {}
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = {
                "type": family.type,
                "samples": [[s.name, dict(s.labels), s.value] for s in family.samples],
            }
    except Exception as error:  # the parser raises ValueError and others on malformed text
        print(f"parse error: {error}", file=sys.stderr)
        return 1
    json.dump({"families": families}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
