"""The in-cluster controller: watches `ScalingPolicy` objects, evaluates them on schedule through
`gemini.loop.tick_batch`, and reports in each policy's status, in Events and on `/metrics`.

Modules: `cache` (parsed policies and their state), `watch` (list+watch with the official
client), `scheduling` (due times from APScheduler triggers, batches, worker pool), `status`
(conditions and the status patch), `events` (deduplicated Kubernetes Events), `leader` (Lease
election), `telemetry` (Prometheus series), `server` (HTTP), `runtime` (wiring), `commands`
(the CLI entry). Only this package imports the kubernetes watch machinery; it may import both
`gemini.metrics` and `gemini.scalers`.
"""
