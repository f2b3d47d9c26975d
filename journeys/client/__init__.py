"""The async client: :class:`JourneysClient`, one small class per area behind it.

``runs`` (trigger, status, cancel) with ``cohort_triggers`` (triggers run as cohorts),
``people`` (identify, track, merge, devices, erasure), ``history`` (activity, export),
``batch``, ``segments`` with ``entry`` (journeys that start themselves), ``messages``,
``consent`` (preferences, suppressions) and ``templates`` (preview); ``context`` holds
what they share and ``facade`` composes them (see its table).
"""

from journeys.client.facade import JourneysClient

__all__ = ["JourneysClient"]
