"""LAPOR! intake gateway.

Every channel (web, SMS 1708, e-mail, Twitter/X, Telegram, scanned letters) hands what it
received to the intake port (:mod:`gateway.intake`). The port stores the message as received,
turns it into one canonical complaint (:mod:`gateway.domain`) and writes an outbox row in the
same transaction; the outbox relay (:mod:`gateway.outbox`) publishes it to RabbitMQ for the
routing core. :mod:`gateway.bootstrap` is the one place that wires the parts together.
"""
