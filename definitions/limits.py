"""The budgets of the journey language: what a definition file may hold and nest.

Journey, segment and template files come from people and tools that make mistakes (and,
for a hosted editor, from people who mean harm). Every limit below is checked before the
work it bounds, and a file beyond one gets a located error, never a traceback, a hang or
gigabytes of memory. README's Validation section lists them.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_PARTS",
    "MAX_DURATION",
    "MAX_DURATION_TEXT",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "MAX_PLAN_BYTES",
    "MAX_PROBLEMS_PER_FILE",
    "MAX_SEGMENT_CHAIN",
    "MAX_STEP_NESTING",
    "MAX_VALUES",
    "MIN_DURATION",
]

MAX_FILE_BYTES = 1024 * 1024
"""The largest YAML file read (1 MiB); a larger one is refused without being parsed."""

MAX_NESTING = 64
"""How deep mappings and lists may nest in a YAML file, aliases included."""

MAX_VALUES = 100_000
"""How many values (scalars, mappings, lists) a file may hold once aliases are expanded.

Bounds "billion laughs" alias bombs: a few hundred bytes of anchors cannot become
millions of values.
"""

MAX_STEP_NESTING = 16
"""How deep ``branch`` and ``split`` steps may nest inside each other."""

MAX_SEGMENT_CHAIN = 10
"""How many segments a condition may go through (a segment naming a segment …)."""

MAX_CONDITION_DEPTH = 32
"""How deep a condition may nest once the segments it names are filled in."""

MAX_CONDITION_PARTS = 1_000
"""How many parts one condition may have once the segments it names are filled in."""

MAX_PROBLEMS_PER_FILE = 100
"""Problems listed per file; the rest are counted in one last line."""

MIN_DURATION = timedelta(milliseconds=1)
"""The shortest duration: Temporal refuses a timer of zero, and runs count in milliseconds."""

MAX_DURATION = timedelta(days=36_500)
"""The longest duration, 100 years of 365 days (36500d).

The Temporal server cuts a longer timer down to this (a 36525d wait started a 36500d
timer on the dev server), so a longer wait would not be the wait written. Well inside
everything else around it: protobuf Durations (10,000 years), fire times as Timestamps
and ``now + duration`` in Python's datetime (up to the year 9999), and ``within``
looking back ``now - duration`` (down to the year 1).
"""

MAX_DURATION_TEXT = 64
"""The longest duration string (``1w2d3h4m5s`` is 10 characters)."""

MAX_PLAN_BYTES = 1024 * 1024
"""The largest compiled plan, as Temporal's payload converter encodes it (1 MiB).

Every run receives its plan as workflow input; the Temporal server refuses inputs over
its blob size limit (2 MB by default), which would leave a trigger unable to start.
"""
