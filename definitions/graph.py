"""A plan drawn as a Mermaid flowchart (``journeys graph NAME``)."""

from __future__ import annotations

from definitions.plan import MAIN, Plan
from definitions.steps import KINDS

__all__ = ["to_mermaid"]

_Loose = list[tuple[str, str]]
"""Edges waiting for their target: (source node, edge label)."""


def _node_id(step_id: str) -> str:
    return "s_" + "".join(ch if ch.isalnum() else "_" for ch in step_id)


def _text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(plan: Plan) -> str:
    """The journey as a ``flowchart TD`` in Mermaid syntax."""
    lines = ["flowchart TD", f'  start(["{_text(plan.journey)}"])']
    if plan.exit_when is not None:
        from definitions.conditions import describe_condition

        lines.append(f'  goal{{{{"exit when {_text(describe_condition(plan.exit_when))}"}}}}')
        lines.append("  goal -.- start")

    def connect(loose: _Loose, target: str) -> None:
        for source, label in loose:
            arrow = f" -->|{_text(label)}| " if label else " --> "
            lines.append(f"  {source}{arrow}{target}")

    def walk(sequence: str | None, loose: _Loose) -> _Loose:
        if sequence is None:
            return loose
        for step_id in plan.sequences[sequence]:
            step = plan.step(step_id)
            kind = KINDS[step.kind]
            node = _node_id(step_id)
            text = _text(f"{step_id}: {kind.label(step)}")
            shape = {
                "decision": f'{{"{text}"}}',
                "end": f'(["{text}"])',
            }.get(kind.shape, f'["{text}"]')
            lines.append(f"  {node}{shape}")
            connect(loose, node)
            if kind.shape == "end":
                return []
            branches = kind.branches(step)
            if not branches:
                loose = [(node, "")]
                continue
            loose = []
            for label, child in branches:
                loose += walk(child, [(node, label)])
        return loose

    ends = walk(MAIN, [("start", "")])
    if ends:
        lines.append('  done(["end"])')
        connect(ends, "done")
    return "\n".join(lines) + "\n"
