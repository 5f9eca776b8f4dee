"""Parses a Prometheus text exposition (format 0.0.4) from stdin with prometheus_client, the
Python reference client's parser, and prints its samples as JSON lines:
{"family", "type", "name", "labels", "value"}. A malformed exposition raises, exiting non-zero.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        value = sample.value
        print(
            json.dumps(
                {
                    "family": family.name,
                    "type": family.type,
                    "name": sample.name,
                    "labels": sample.labels,
                    # JSON has no infinities or NaN.
                    "value": value if math.isfinite(value) else str(value),
                }
            )
        )
