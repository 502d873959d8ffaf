"""How fast `gemini validate` is, and what its parts cost.

Builds one multi-document file with N policies (the six deploy/examples, renamed, repeated),
then times, in the same run:

- PyYAML's plain SafeLoader (the baseline every YAML tool pays),
- gemini's strict loader (SafeLoader + duplicate-key check),
- parse_policy on every document (pydantic + cross-field problems),
- validate_files end to end (load + parse + cross-file checks),
- rendering the CRD and the reference page.

Prints a Markdown table; exits 0. Usage: python benchmarks/bench_validate.py [N] (default 600).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gemini import manifests
from gemini.policy import crd, reference, spec

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def build(n: int) -> str:
    examples = [
        d
        for p in sorted((ROOT / "deploy" / "examples").glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
    ]
    docs = []
    for i in range(n):
        doc = dict(examples[i % len(examples)])
        doc["metadata"] = {**doc["metadata"], "name": f"policy-{i}"}
        doc["spec"] = {**doc["spec"], "mode": "Shadow"}  # many policies, one target each kind
        docs.append(doc)
    return yaml.safe_dump_all(docs, sort_keys=False)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    text = build(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policies.yaml"
        path.write_text(text)
        docs = list(yaml.safe_load_all(text))

        safe = best_of(lambda: list(yaml.safe_load_all(text)))
        strict = best_of(lambda: list(manifests.documents(path)))
        parse = best_of(lambda: [spec.parse_policy(d) for d in docs])
        problems: list[str] = []
        end_to_end = best_of(lambda: problems.extend(manifests.validate_files([path])))
        assert problems == [], problems[:3]
        render_crd = best_of(crd.render, repeat=5)
        render_ref = best_of(reference.render_markdown, repeat=5)

    kib = len(text.encode()) / 1024
    rows = [
        ("PyYAML SafeLoader (baseline)", safe, 1.0),
        ("strict loader (duplicate keys)", strict, strict / safe),
        ("parse_policy, all documents", parse, parse / safe),
        ("validate_files end to end", end_to_end, end_to_end / safe),
    ]
    print(f"## gemini validate: {n} policies in one file ({kib:.0f} KiB), best of 3\n")
    print("| step | seconds | per policy (µs) | × baseline |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / n * 1e6:.0f} | {ratio:.2f} |")
    print(f"\n| render | ms |\n| --- | ---: |\n| `gemini crd` | {render_crd * 1e3:.1f} |")
    print(f"| policy reference | {render_ref * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
