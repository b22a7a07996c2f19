"""Alerts from outside the schedule: Alertmanager's webhook becomes incidents (:mod:`.intake`)."""
