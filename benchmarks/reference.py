"""The reference journey and its people: email → wait 2s → branch on an attribute → webhook."""

from __future__ import annotations

from pathlib import Path

JOURNEY = """
journey: reference
description: The benchmark's reference journey.
steps:
  - send: hello
    channel: email
    template: hello
  - wait: 2s
  - branch: plan_check
    if: { attribute: plan, op: eq, value: pro }
    then:
      - send: pro_hook
        channel: webhook
        url: "{{ trigger.sink }}/pro"
    else:
      - send: free_hook
        channel: webhook
        url: "{{ trigger.sink }}/free"
"""

TEMPLATE = """
email:
  subject: "Hello {{ customer.first_name | default: 'there' }}"
  text: "Hi {{ customer.first_name | default: 'there' }}, welcome."
"""


def write(directory: Path) -> Path:
    """The reference journey and its template in a journeys directory."""
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "reference.yaml").write_text(JOURNEY)
    (directory / "templates" / "hello.yaml").write_text(TEMPLATE)
    return directory


def people(count: int) -> list[dict[str, str]]:
    """Recipients with an email, a first name and a plan (a third on pro)."""
    return [
        {
            "id": f"r{i:06d}",
            "email": f"r{i}@bench.example",
            "first_name": f"R{i}",
            "plan": "pro" if i % 3 == 0 else "free",
        }
        for i in range(count)
    ]
