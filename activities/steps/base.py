"""The activity answering a step kind's question, and the registry the worker reads.

A step kind that needs data of its own declares a :class:`~definitions.steps.base.Question`
in its module under ``definitions/steps/`` (the activity's name, input and result: pure
data); its answer is a function of the store and that input, here in
``activities/steps/<kind>.py``, registered in :data:`ANSWERS` with one line. The worker
registers every answer's activity under the question's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from temporalio import activity

from definitions.steps.base import Question

if TYPE_CHECKING:
    from journeys.store import Store

__all__ = ["ANSWERS", "Answer", "AnswerRegistry"]

InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Answer(Generic[InputT, ResultT]):
    """How a step kind's question is answered: a function of the store and the input."""

    question: Question[InputT, ResultT, Any]
    """The question answered (its activity name, input and result types)."""
    answer: Callable[[Store, InputT], Awaitable[ResultT]]
    """Answer a batch: one answer per recipient of the input, in their order."""

    def activities(self, store: Store) -> list[Callable[..., Awaitable[object]]]:
        """The Temporal activities: the question's, and its bare form's for older runs."""
        question = self.question

        async def typed(request: InputT) -> ResultT:
            return await self.answer(store, request)

        found = [_defined(typed, question.activity, question.input, question.result)]
        bare = question.before_typed_results
        if bare is not None:

            async def untyped(request: InputT) -> object:
                return question.answers(await self.answer(store, request))

            found.append(_defined(untyped, bare.activity, bare.input, bare.result))
        return found


def _defined(
    function: Callable[[Any], Awaitable[Any]], name: str, input: type, result: type
) -> Callable[..., Awaitable[object]]:
    """An activity named ``name`` whose payload types Temporal reads from its hints."""
    function.__annotations__ = {"request": input, "return": result}
    function.__name__ = function.__qualname__ = name
    defined: Callable[..., Awaitable[object]] = activity.defn(name=name)(function)
    return defined


class AnswerRegistry(Mapping[str, Answer[Any, Any]]):
    """The answers of this process, by their question's activity name."""

    def __init__(self) -> None:
        self._answers: dict[str, Answer[Any, Any]] = {}

    def register(self, answer: Answer[Any, Any]) -> Answer[Any, Any]:
        """Add an answer (again: a no-op); returns it.

        Raises:
            ValueError: another answer already has its activity name.

        """
        name = answer.question.activity
        known = self._answers.get(name)
        if known is not None and known is not answer:
            raise ValueError(f"an answer to {name!r} is already registered")
        self._answers[name] = answer
        return answer

    def unregister(self, name: str) -> None:
        """Remove an answer (tests that register one of their own)."""
        self._answers.pop(name, None)

    def activities(self, store: Store) -> list[Callable[..., Awaitable[object]]]:
        """Every answer's activities, on one store."""
        return [found for answer in self._answers.values() for found in answer.activities(store)]

    def __getitem__(self, name: str) -> Answer[Any, Any]:
        return self._answers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._answers)

    def __len__(self) -> int:
        return len(self._answers)


ANSWERS = AnswerRegistry()
"""The answers of this process; ``activities.steps`` registers the built-in ones."""
