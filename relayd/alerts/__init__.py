"""Alerts: tell the operator, once per problem, on the channels they watch, and say when it is over.

The package reads in layers, each module one job:

* ``model`` — the vocabulary: kinds, severities, conditions, alerts, notifications;
* ``conditions`` — pure: the facts the daemon has (segments, platform health, config, streams) → conditions;
* ``decide`` — pure: conditions + durable state + ``now`` → new state + notifications (damped, exactly once);
* ``grouping`` — pure: many notifications for one target → one message;
* ``redact`` — pure: alert URLs shown without their tokens;
* ``targets`` — the operator's targets (URL, minimum severity, kinds) and which notifications each one takes;
* ``state`` — the durable alert state as a bounded JSON document in the store's key-value table;
* ``delivery`` — the supervised sending loop: one queue and one worker per target, timeouts, retries, a bound;
* ``manager`` — the object the daemon owns: evaluate, deliver, and list open alerts.

This ``__init__`` imports nothing, so ``relayd.settings`` can use ``redact``/``targets`` without loading Apprise.
"""
