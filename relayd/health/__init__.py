"""Stream health from the receiving side: probe each schedule's playback URL and judge whether it advances.

The platform's task list cannot tell "running" from "running but not pushing", so relayd watches the destination
stream itself where a schedule names a ``health`` URL. ``probes`` turn one look at a stream into an
:class:`~relayd.health.observations.Observation`; ``verdict`` judges a stream from its observations (pure);
``monitor`` schedules the probes on the daemon's loop and reports stalls.
"""
