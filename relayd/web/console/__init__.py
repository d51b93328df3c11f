"""The web console: a live timeline of every schedule, served by the daemon next to the status API.

Deliberately empty of imports: ``relayd.web.auth`` reads the session cookie through ``console.sessions`` and must
be importable without pulling in the pages (which import ``auth`` themselves). ``console.routes.setup_console``
wires everything into an application.
"""
