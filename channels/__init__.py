"""Channels: one package per way a complaint arrives (web, sms, email, twitter, telegram, letter).

A channel speaks its transport's protocol, builds a :class:`~gateway.domain.RawInbound`, calls
the intake port with its pure parser and answers its sender from the receipt. It never touches
the database or the broker itself. Its folder name is its config section and its ``channel``
value in the contract.
"""
