"""Real traffic as input: access logs, JSON-lines logs and HAR files.

Readers stream a log into :class:`~surge.traffic.record.LogRecord` values
(:func:`~surge.traffic.read.open_log`), the normaliser turns URLs into endpoint
templates (:func:`~surge.traffic.normalise.template`), and
:mod:`~surge.traffic.workload` derives a workload model from the records
(endpoint mix, arrival-rate curve, sessions, think times).

This layer parses input data; it never generates load (it imports only
``surge.api``). ``surge replay`` and ``surge model`` (the CLI) connect it to the
engine.
"""
