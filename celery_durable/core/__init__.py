"""Foundations: records, serialization, control-flow signals, retry timing, the clock.

Imports nothing of celery_durable but :mod:`celery_durable.error`.
"""
