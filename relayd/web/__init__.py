"""The HTTP server: status callbacks, the operator status API, health checks and metrics.

Public API (the daemon builds and runs the app; nothing else in relayd imports the web layer):

- ``app.build_app(...)`` / ``app.WebServer`` / ``app.parse_listen`` — the application and its lifecycle.
- ``views.DaemonView`` / ``views.ScheduleInfo`` / ``views.NextAction`` / ``views.ReconcileHint`` — the seams the
  daemon implements or provides.
- ``signing.callback_url`` / ``signing.callback_mac`` / ``signing.verify_mac`` / ``signing.verify_sign`` — the
  callback URL capability and the platform's optional ``sign``/``t`` check (pure).
- ``notices.CallbackNotice`` / ``notices.CallbackEvent`` — what a callback said, as handed to the reconcile hint.
- ``auth.token_file`` / ``auth.read_token_file`` / ``auth.ensure_token_file`` — the operator API token file.

Module map: ``callbacks`` (the receiver), ``jsonbody`` (strict decoding of untrusted JSON), ``api`` (status JSON),
``health`` (healthz/readyz/metrics), ``auth`` (bearer token), ``errors`` (typed HTTP errors mapped in ``app``'s
middleware), ``connections`` (read timeout and connection cap), ``accepts`` (rate-limited accept-error log).
"""
