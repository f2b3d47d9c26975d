"""The Temporal activities of journeys: condition checks, windows, rendering and delivery."""

from activities.journey import JourneyActivities

__all__ = ["JourneyActivities"]
