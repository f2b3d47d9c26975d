"""The activities of step kinds that ask the store something: one module each, one line here.

A kind's module here holds the :class:`~activities.steps.base.Answer` to the
:class:`~definitions.steps.base.Question` its ``definitions/steps/<kind>.py`` declares;
registering it in :data:`ANSWERS` is all the worker needs. Importing this package
registers the built-in ones (``journeys`` and the worker import it through
:mod:`activities.journey`).
"""

from __future__ import annotations

from activities.steps import window
from activities.steps.base import ANSWERS, Answer, AnswerRegistry

__all__ = ["ANSWERS", "Answer", "AnswerRegistry"]

ANSWERS.register(window.DELAYS)
